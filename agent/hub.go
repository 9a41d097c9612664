package agent

import (
	"encoding/json"
	"sync"
	"time"
)

// UIEvent is pushed to every connected POS screen over Server-Sent Events:
// a serial scan, a status change, a print result.
type UIEvent struct {
	Type string          `json:"type"` // scan, status, print, alert, sale
	Data json.RawMessage `json:"data"`
	At   time.Time       `json:"at"`
}

// Hub fans UI events out to subscribers. Publish never blocks: a
// subscriber that falls behind loses its oldest events (a screen that
// cannot keep up re-reads the state it needs over the API).
type Hub struct {
	mu     sync.Mutex
	subs   map[chan UIEvent]struct{}
	closed bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan UIEvent]struct{}{}} }

// Publish sends an event of typ with data marshalled to JSON.
func (h *Hub) Publish(typ string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	ev := UIEvent{Type: typ, Data: b, At: time.Now().UTC()}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			select { // drop the oldest, keep the newest
			case <-ch:
			default:
			}
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// Subscribe returns a channel of events and a cancel func that must be
// called when the subscriber goes away. The channel is closed when the hub
// is (at once if it already is).
func (h *Hub) Subscribe() (<-chan UIEvent, func()) {
	ch := make(chan UIEvent, 64)
	h.mu.Lock()
	if h.closed {
		close(ch)
	} else {
		h.subs[ch] = struct{}{}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// Close ends every subscription: each subscriber's channel is closed, so
// an open event stream returns and an http.Server's Shutdown need not wait
// out its deadline for it. Later Publish calls do nothing and later
// subscribers get a closed channel. Close is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for ch := range h.subs {
		close(ch)
	}
	clear(h.subs)
}

// Subscribers is the number of connected screens.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
