// Package bench holds the measurements shared by `go test -bench` and
// cmd/pos-bench: our figures and, beside each, the raw limit of the same
// machine measured in the same run (bare commits, paho without a database,
// bulk inserts without MQTT), so ratios hold on any machine.
package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// RawPublish measures the transport alone: one paho client publishes
// payloads at QoS 1 to topic with at most window unacknowledged, and a
// second client subscribed at QoS 1 receives them, with no database on
// either side. It returns the time from the first publish until the
// subscriber has every message.
func RawPublish(ctx context.Context, brokerURL, topic string, payloads [][]byte, window int) (time.Duration, error) {
	if window <= 0 {
		window = 4
	}
	var got atomic.Int64
	done := make(chan struct{})
	want := int64(len(payloads))
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-raw-sub").
		SetUsername("hq").SetCleanSession(true).SetAutoReconnect(false))
	if t := sub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return 0, fmt.Errorf("raw publish: connect subscriber: %v", t.Error())
	}
	defer sub.Disconnect(0)
	if t := sub.Subscribe(topic, 1, func(paho.Client, paho.Message) {
		if got.Add(1) == want {
			close(done)
		}
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return 0, fmt.Errorf("raw publish: subscribe: %v", t.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-raw-pub").
		SetUsername("hq").SetCleanSession(true).SetAutoReconnect(false))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return 0, fmt.Errorf("raw publish: connect publisher: %v", t.Error())
	}
	defer pub.Disconnect(0)

	start := time.Now()
	sem := make(chan paho.Token, window)
	for _, p := range payloads {
		if len(sem) == cap(sem) {
			t := <-sem
			if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
				return 0, fmt.Errorf("raw publish: %v", t.Error())
			}
		}
		sem <- pub.Publish(topic, 1, false, p)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("raw publish: subscriber got %d of %d", got.Load(), want)
	}
	return time.Since(start), nil
}
