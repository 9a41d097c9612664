// Package ptysim is a pluggable serial device on a Linux pseudo-terminal,
// for tests and the demo. The device is reached through a symlink (like a
// udev SYMLINK+= rule) that Unplug removes and Replug re-points at a fresh
// pseudo-terminal, so drivers see a real unplug: the old tty hangs up and
// its /dev/pts/N vanishes.
package ptysim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrUnplugged is returned by Write and Read while the device is unplugged.
var ErrUnplugged = errors.New("ptysim: device unplugged")

// Device is a simulated serial device. Its methods are safe for concurrent use.
type Device struct {
	link string

	mu     sync.Mutex
	master *os.File
	slave  *os.File // held open so the tty keeps its raw settings
}

// New plugs in a device reachable at link (a path in a temp dir; its parent
// must exist).
func New(link string) (*Device, error) {
	d := &Device{link: link}
	if err := d.Replug(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path returns the stable symlink path drivers should open.
func (d *Device) Path() string { return d.link }

// Replug connects a fresh pseudo-terminal and points the symlink at it
// (atomically, by rename). It does nothing if already plugged in.
func (d *Device) Replug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master != nil {
		return nil
	}
	m, s, err := pty.Open()
	if err != nil {
		return fmt.Errorf("ptysim open pty: %w", err)
	}
	// Raw mode on the device side: bytes written before the driver opens
	// the port must not be translated (ICRNL turns CR into LF) or echoed.
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return err
	}
	// pty.Open hands back a master in blocking mode (File.Fd makes it
	// so), and a Read blocked in the kernel is not interrupted by Close:
	// Read's promise to return on Unplug needs the runtime poller, so the
	// master is reopened non-blocking.
	if m, err = pollable(m); err != nil {
		s.Close()
		return err
	}
	tmp := d.link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(s.Name(), tmp); err != nil {
		m.Close()
		s.Close()
		return fmt.Errorf("ptysim symlink: %w", err)
	}
	if err := os.Rename(tmp, d.link); err != nil {
		m.Close()
		s.Close()
		return fmt.Errorf("ptysim symlink: %w", err)
	}
	d.master, d.slave = m, s
	return nil
}

// Unplug removes the symlink and closes the pseudo-terminal: an open driver
// sees its tty hang up and the device path disappear.
func (d *Device) Unplug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master == nil {
		return nil
	}
	if err := os.Remove(d.link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ptysim unplug: %w", err)
	}
	err := errors.Join(d.master.Close(), d.slave.Close())
	d.master, d.slave = nil, nil
	return err
}

// Write sends bytes from the device to the driver.
func (d *Device) Write(p []byte) (int, error) {
	d.mu.Lock()
	m := d.master
	d.mu.Unlock()
	if m == nil {
		return 0, ErrUnplugged
	}
	return m.Write(p)
}

// Read receives bytes the driver wrote to the device. It blocks until data
// arrives or the device is unplugged or closed.
func (d *Device) Read(p []byte) (int, error) {
	d.mu.Lock()
	m := d.master
	d.mu.Unlock()
	if m == nil {
		return 0, ErrUnplugged
	}
	return m.Read(p)
}

// Close unplugs the device for good.
func (d *Device) Close() error { return d.Unplug() }

// TTY returns the current /dev/pts path ("" while unplugged).
func (d *Device) TTY() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slave == nil {
		return ""
	}
	return d.slave.Name()
}

// pollable returns a non-blocking duplicate of f that the runtime poller
// manages, and closes f.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ptysim dup master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ptysim master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// makeRaw puts a tty in raw mode (cfmakeraw).
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("ptysim get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("ptysim set termios: %w", err)
	}
	return nil
}

// LinkIn returns a symlink path named name inside dir (a test's TempDir).
func LinkIn(dir, name string) string { return filepath.Join(dir, name) }
