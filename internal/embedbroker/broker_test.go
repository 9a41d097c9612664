package embedbroker

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// connect connects a paho client that reports its connection loss on lost.
func connect(t *testing.T, url, id string, lost chan<- string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) {
			if lost != nil {
				lost <- id
			}
		}))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "connect %s", id)
	require.NoError(t, tok.Error(), "connect %s", id)
	return c
}

// closed fails the test if f has not returned within a generous deadline.
func closed(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func TestBrokerCloseDropsClientsAndRefusesNewOnes(t *testing.T) {
	b, err := Start(Options{})
	require.NoError(t, err)
	lost := make(chan string, 1)
	c := connect(t, b.URL(), "c1", lost)
	defer c.Disconnect(0)

	closed(t, "Close", b.Close)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not see its connection drop")
	}
	_, err = net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	require.Error(t, err, "a closed broker refuses connections")
	require.NoError(t, b.Close(), "Close twice is fine")
}

func TestBrokerRestartServesTheSameAddress(t *testing.T) {
	b, err := Start(Options{})
	require.NoError(t, err)
	b2, err := Restart(b)
	require.NoError(t, err)
	defer b2.Close()
	require.Equal(t, b.Addr(), b2.Addr())
	c := connect(t, b2.URL(), "c1", nil)
	c.Disconnect(0)
}

// Clients leaving while the broker closes: Close drops and waits for every
// client goroutine before mochi's Close (see Broker.Close), and must not
// hang on clients that are leaving by themselves. (mochi's own deadlock,
// seen once in a test cleanup, needs a client to leave within nanoseconds
// of its Close; this test did not reproduce it on the old code.)
func TestBrokerCloseWhileClientsLeave(t *testing.T) {
	for round := 0; round < 5; round++ {
		b, err := Start(Options{})
		require.NoError(t, err)
		clients := make([]paho.Client, 20)
		for i := range clients {
			clients[i] = connect(t, b.URL(), fmt.Sprintf("r%d-c%d", round, i), nil)
		}
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Disconnect(0)
			}()
		}
		closed(t, fmt.Sprintf("Close in round %d", round), b.Close)
		wg.Wait()
	}
}
