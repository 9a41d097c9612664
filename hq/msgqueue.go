package hq

import (
	"context"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// msgQueue is one worker's queue of received messages. Push never blocks:
// it runs on paho's router, and a blocked router stops the client from
// reading PUBACKs for HQ's own publishes and its pings until the broker
// drops it. It is unbounded here because the broker already bounds it:
// HQ PUBACKs a message only after it is processed, and the broker sends a
// client at most its in-flight limit of unacknowledged QoS 1 messages
// (Mosquitto's max_inflight_messages, mochi's MaximumInflight).
type msgQueue struct {
	mu     sync.Mutex
	items  []paho.Message
	signal chan struct{}
}

func newMsgQueue() *msgQueue { return &msgQueue{signal: make(chan struct{}, 1)} }

// Push appends m and wakes the worker.
func (q *msgQueue) Push(m paho.Message) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// Pop returns the oldest message, waiting for one until ctx ends.
func (q *msgQueue) Pop(ctx context.Context) (paho.Message, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			m := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return m, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.signal:
		}
	}
}

// Len is the number of messages waiting.
func (q *msgQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
