package serialport_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/serialport/ptysim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	good := serialport.Config{Path: "/dev/ttyUSB0"}.WithDefaults()
	require.NoError(t, good.Validate())
	assert.Equal(t, 9600, good.Baud)
	bad := map[string]func(*serialport.Config){
		"path":     func(c *serialport.Config) { c.Path = "" },
		"baud":     func(c *serialport.Config) { c.Baud = 1234 },
		"databits": func(c *serialport.Config) { c.DataBits = 9 },
		"parity":   func(c *serialport.Config) { c.Parity = 'X' },
		"stop":     func(c *serialport.Config) { c.StopBits = 3 },
		"timeout":  func(c *serialport.Config) { c.ReadTimeout = time.Millisecond },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			c := good
			mut(&c)
			require.ErrorIs(t, c.Validate(), serialport.ErrBadConfig)
		})
	}
	p, err := serialport.ParseParity("even")
	require.NoError(t, err)
	assert.Equal(t, serialport.ParityEven, p)
	_, err = serialport.ParseParity("mark")
	require.ErrorIs(t, err, serialport.ErrBadConfig)
}

func TestReadTimeoutVersusGone(t *testing.T) {
	dev, err := ptysim.New(filepath.Join(t.TempDir(), "tty0"))
	require.NoError(t, err)
	defer dev.Close()
	p, err := serialport.Open(serialport.Config{Path: dev.Path()})
	require.NoError(t, err)
	defer p.Close()

	_, err = dev.Write([]byte("ab\r"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	var got []byte
	for len(got) < 3 {
		n, err := p.Read(buf)
		if errors.Is(err, serialport.ErrTimeout) {
			continue
		}
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, "ab\r", string(got), "raw mode: CR stays CR")

	_, err = p.Read(buf)
	require.ErrorIs(t, err, serialport.ErrTimeout, "an idle line is a timeout, not an unplug")

	require.NoError(t, dev.Unplug())
	_, err = p.Read(buf)
	require.ErrorIs(t, err, serialport.ErrGone)
}

func TestReplugToNewTTYIsGone(t *testing.T) {
	dev, err := ptysim.New(filepath.Join(t.TempDir(), "tty0"))
	require.NoError(t, err)
	defer dev.Close()
	p, err := serialport.Open(serialport.Config{Path: dev.Path()})
	require.NoError(t, err)
	defer p.Close()
	// Keep another pty open so the new one gets a different number.
	other, err := ptysim.New(filepath.Join(t.TempDir(), "other"))
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, dev.Unplug())
	require.NoError(t, dev.Replug())
	buf := make([]byte, 4)
	_, err = p.Read(buf)
	require.ErrorIs(t, err, serialport.ErrGone)
}

func TestOpenMissing(t *testing.T) {
	_, err := serialport.Open(serialport.Config{Path: filepath.Join(t.TempDir(), "nope")})
	require.Error(t, err)
}
