package wire

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the topic prefix when the config names none.
const DefaultPrefix = "edgepos/v1"

// Kind names a message's place in the protocol, taken from its topic.
type Kind string

// The topic kinds of DESIGN.md's sync table.
const (
	KindHello   Kind = "hello"   // terminal → HQ, up/hello
	KindEvents  Kind = "events"  // terminal → HQ, up/events
	KindAck     Kind = "ack"     // HQ → terminal, down/ack
	KindChanges Kind = "changes" // HQ → store, down/changes
	KindStatus  Kind = "status"  // terminal → all, retained online / will offline
)

// Topics builds and parses topics under one prefix.
type Topics struct {
	Prefix string
}

// NewTopics returns Topics for prefix, or DefaultPrefix when it is empty.
func NewTopics(prefix string) Topics {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Topics{Prefix: strings.TrimSuffix(prefix, "/")}
}

func (t Topics) terminal(store, terminal string) string {
	return t.Prefix + "/stores/" + store + "/terminals/" + terminal
}

// Hello is the topic a terminal announces itself on after every connect.
func (t Topics) Hello(store, terminal string) string {
	return t.terminal(store, terminal) + "/up/hello"
}

// Events is the topic a terminal publishes outbox batches on.
func (t Topics) Events(store, terminal string) string {
	return t.terminal(store, terminal) + "/up/events"
}

// Ack is the topic HQ acks a terminal's batches on.
func (t Topics) Ack(store, terminal string) string { return t.terminal(store, terminal) + "/down/ack" }

// Status is the retained online/offline topic of a terminal.
func (t Topics) Status(store, terminal string) string { return t.terminal(store, terminal) + "/status" }

// Changes is the store-wide change-feed topic every terminal of store reads.
func (t Topics) Changes(store string) string { return t.Prefix + "/stores/" + store + "/down/changes" }

// UpFilter is the subscription filter HQ consumes all uploads with.
func (t Topics) UpFilter() string { return t.Prefix + "/stores/+/terminals/+/up/#" }

// StatusFilter is the subscription filter for every terminal's status.
func (t Topics) StatusFilter() string { return t.Prefix + "/stores/+/terminals/+/status" }

// Shared returns filter as an MQTT shared subscription of group, so several
// HQ processes split the load ($share/group/filter).
func Shared(group, filter string) string { return "$share/" + group + "/" + filter }

// Topic is a parsed topic.
type Topic struct {
	Kind     Kind
	Store    string
	Terminal string // empty for KindChanges
}

// Parse splits topic into kind, store and terminal. It returns an error
// wrapping ErrTopic for anything that is not one of this prefix's topics.
func (t Topics) Parse(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, t.Prefix+"/")
	if !ok {
		return Topic{}, fmt.Errorf("%w: %q does not start with %q", ErrTopic, truncate(topic, 120), t.Prefix)
	}
	p := strings.Split(rest, "/")
	bad := func(why string) (Topic, error) {
		return Topic{}, fmt.Errorf("%w: %q: %s", ErrTopic, truncate(topic, 120), why)
	}
	if len(p) < 3 || p[0] != "stores" {
		return bad("expected stores/{store}/...")
	}
	if !ValidID(p[1]) {
		return bad("invalid store id")
	}
	store := p[1]
	if len(p) == 4 && p[2] == "down" && p[3] == "changes" {
		return Topic{Kind: KindChanges, Store: store}, nil
	}
	if len(p) < 5 || p[2] != "terminals" || !ValidID(p[3]) {
		return bad("expected terminals/{terminal}/...")
	}
	term := p[3]
	switch strings.Join(p[4:], "/") {
	case "up/hello":
		return Topic{Kind: KindHello, Store: store, Terminal: term}, nil
	case "up/events":
		return Topic{Kind: KindEvents, Store: store, Terminal: term}, nil
	case "down/ack":
		return Topic{Kind: KindAck, Store: store, Terminal: term}, nil
	case "status":
		return Topic{Kind: KindStatus, Store: store, Terminal: term}, nil
	}
	return bad("unknown message kind")
}
