// Package scannersim is a simulated serial barcode scanner on a Linux
// pseudo-terminal for tests, benchmarks and pos-demo. It "types" codes with
// a configurable suffix and AIM prefix, and can be unplugged and replugged
// (its stable path is a symlink, like a udev SYMLINK+= rule).
package scannersim

import (
	"fmt"

	"github.com/edgepos/edgepos/devices/serialport/ptysim"
)

// Scanner is a simulated scanner. Its methods are safe for concurrent use.
type Scanner struct {
	dev *ptysim.Device
	// Suffix is appended to every code; default "\r".
	Suffix string
}

// New plugs in a simulated scanner reachable at link (a path in a temp
// dir whose parent exists).
func New(link string) (*Scanner, error) {
	d, err := ptysim.New(link)
	if err != nil {
		return nil, err
	}
	return &Scanner{dev: d, Suffix: "\r"}, nil
}

// Path returns the path a driver should open.
func (s *Scanner) Path() string { return s.dev.Path() }

// Scan types code with the given AIM prefix ("" for none) and the suffix.
func (s *Scanner) Scan(aim, code string) error {
	if _, err := s.dev.Write([]byte(aim + code + s.Suffix)); err != nil {
		return fmt.Errorf("scannersim scan %q: %w", code, err)
	}
	return nil
}

// WriteRaw sends raw bytes (garbage, partial frames).
func (s *Scanner) WriteRaw(p []byte) error {
	if _, err := s.dev.Write(p); err != nil {
		return fmt.Errorf("scannersim write: %w", err)
	}
	return nil
}

// Unplug makes the device vanish.
func (s *Scanner) Unplug() error { return s.dev.Unplug() }

// Replug brings the device back on a new pseudo-terminal at the same path.
func (s *Scanner) Replug() error { return s.dev.Replug() }

// Close unplugs the scanner for good.
func (s *Scanner) Close() error { return s.dev.Close() }
