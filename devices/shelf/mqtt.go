package shelf

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/devices"
)

// runMQTT connects to the broker and stays subscribed, reconnecting with a
// capped jittered backoff. paho's own auto-reconnect is off: this loop
// owns the client, so Close knows when it is gone and the status always
// says whether readings can arrive.
func (s *Shelf) runMQTT(ctx context.Context) {
	defer s.wg.Done()
	bo := devices.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	connected := false
	for ctx.Err() == nil {
		c, lost, err := s.mqttConnect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.setTransport("broker not connected: " + err.Error())
			if ok, n := s.connLog.Allow(s.now()); ok {
				s.log.Warn("shelf broker not connected", devices.LogPath, s.cfg.MQTT.Broker, devices.LogErr, err, "suppressed", n)
			}
			if devices.Sleep(ctx, bo.Next()) != nil {
				return
			}
			continue
		}
		bo.Reset()
		if connected {
			s.reconnects.Add(1)
			s.log.Info("shelf broker reconnected", devices.LogPath, s.cfg.MQTT.Broker)
		}
		connected = true
		s.connLog.Reset()
		s.setTransport("")
		select {
		case <-ctx.Done():
			c.Disconnect(250)
			return
		case err := <-lost:
			c.Disconnect(0)
			s.setTransport("broker connection lost: " + err.Error())
			s.log.Warn("shelf broker connection lost", devices.LogPath, s.cfg.MQTT.Broker, devices.LogErr, err)
		}
		if devices.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// mqttConnect connects and subscribes. lost receives at most one error,
// when this connection drops.
func (s *Shelf) mqttConnect(ctx context.Context) (paho.Client, <-chan error, error) {
	m := s.cfg.MQTT
	id := m.ClientID
	if id == "" {
		id = clientID(s.cfg.Name)
	}
	lost := make(chan error, 1)
	o := paho.NewClientOptions().
		AddBroker(m.Broker).
		SetClientID(id).
		SetUsername(m.Username).
		SetPassword(m.Password).
		SetCleanSession(true). // readings are perishable: nothing to queue
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetKeepAlive(15 * time.Second).
		SetPingTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		// Order matters (paho's default): readings of a slot must reach the
		// engine in the order the sensor sent them. onMessage never blocks,
		// so the ordered router is never held up (DEPENDENCIES.md: paho).
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.onMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if m.TLS != nil {
		o.SetTLSConfig(m.TLS)
	}
	c := paho.NewClient(o)
	if err := wait(ctx, c.Connect(), 10*time.Second); err != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("connect %s: %w", m.Broker, err)
	}
	tok := c.Subscribe(m.Topic, m.QoS, s.onMessage)
	if err := wait(ctx, tok, 10*time.Second); err != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("subscribe %s: %w", m.Topic, err)
	}
	// Mosquitto and mochi refuse a subscription their ACL denies with
	// return code 0x80, not with an error.
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code == 0x80 {
				c.Disconnect(0)
				return nil, nil, fmt.Errorf("subscribe %s: refused by the broker (check its ACL for user %q)", topic, m.Username)
			}
		}
	}
	return c, lost, nil
}

// wait waits for a paho token, ctx, or d.
func wait(ctx context.Context, t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("timed out")
	}
}

// onMessage runs on paho's router and must never block: it checks the
// size and queues the payload for the engine, counting what it drops.
func (s *Shelf) onMessage(_ paho.Client, msg paho.Message) {
	p := msg.Payload()
	if len(p) > s.cfg.MQTT.MaxPayload {
		s.badMessage(fmt.Errorf("%w: %d bytes on %s, limit %d", ErrPayload, len(p), msg.Topic(), s.cfg.MQTT.MaxPayload))
		return
	}
	if p == nil {
		p = []byte{} // nil means "a Modbus poll" to the engine
	}
	select {
	case s.inbox <- input{at: s.now(), payload: p}:
	default:
		s.dropped.Add(1)
		if ok, n := s.dropLog.Allow(s.now()); ok {
			s.log.Warn("shelf inbox full, reading dropped (a later one replaces it)", "inbox", s.cfg.Inbox, "suppressed", n)
		}
	}
}
