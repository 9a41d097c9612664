package escpos

import (
	"fmt"
	"strings"
)

// StatusRequest returns the real-time status request DLE EOT n (10 04 n)
// for n = 1 (printer), 2 (offline cause), 3 (error cause), 4 (paper).
func StatusRequest(n int) []byte { return []byte{DLE, EOT, byte(n)} }

// PaperSensorRequest returns GS r 1 (1D 72 01), "transmit paper sensor
// status". Unlike DLE EOT it is not real-time: the printer answers it only
// after it has processed every byte received before it, so its answer
// says the job ahead of it went through the print mechanism
// (DEVICE-PROTOCOLS.md §1, "GS r 1 is a buffered paper query").
func PaperSensorRequest() []byte { return []byte{GS, 'r', 1} }

// ValidPaperSensorByte reports whether b can be a GS r 1 answer: bits 4
// and 7 are 0 (a DLE EOT answer has bit 4 set, so the two never mix).
func ValidPaperSensorByte(b byte) bool { return b&0x90 == 0 }

// PaperSensor decodes a GS r 1 answer: 0x03 paper near end, 0x0C paper
// end (one Chinese printer answers 0x0F for both, DEVICE-PROTOCOLS.md §1).
func PaperSensor(b byte) (nearEnd, end bool) { return b&0x03 != 0, b&0x0C != 0 }

// Status is a printer's real-time status, combined from the four DLE EOT
// replies (DEVICE-PROTOCOLS.md §1, real-time status table).
type Status struct {
	// n = 1, printer status
	DrawerPin3       bool `json:"drawer_pin3,omitempty"`      // 0x04: drawer kick-out connector pin 3 high
	Offline          bool `json:"offline,omitempty"`          // 0x08
	WaitingRecovery  bool `json:"waiting_recovery,omitempty"` // 0x20
	FeedButtonPushed bool `json:"feed_button,omitempty"`      // 0x40
	// n = 2, offline cause
	CoverOpen       bool `json:"cover_open,omitempty"`     // 0x04
	FeedingByButton bool `json:"feeding,omitempty"`        // 0x08
	PaperEndStop    bool `json:"paper_end_stop,omitempty"` // 0x20: printing stopped for paper end
	ErrorOccurred   bool `json:"error,omitempty"`          // 0x40
	// n = 3, error cause
	RecoverableError     bool `json:"recoverable_error,omitempty"`      // 0x04
	CutterError          bool `json:"cutter_error,omitempty"`           // 0x08
	UnrecoverableError   bool `json:"unrecoverable_error,omitempty"`    // 0x20
	AutoRecoverableError bool `json:"auto_recoverable_error,omitempty"` // 0x40
	// n = 4, paper roll sensor
	PaperNearEnd bool `json:"paper_near_end,omitempty"` // 0x0C
	PaperEnd     bool `json:"paper_end,omitempty"`      // 0x60
}

// ValidStatusByte reports whether b has the fixed bits of a DLE EOT reply,
// 0xx1xx10: bit 7 = 0, bit 4 = 1, bit 1 = 1, bit 0 = 0.
func ValidStatusByte(b byte) bool { return b&0x93 == 0x12 }

// Apply merges the reply b to DLE EOT n into s. It returns ErrBadStatus
// for a byte without the fixed bits or an n outside 1..4.
func (s *Status) Apply(n int, b byte) error {
	if !ValidStatusByte(b) {
		return fmt.Errorf("%w: %#02x for DLE EOT %d", ErrBadStatus, b, n)
	}
	switch n {
	case 1:
		s.DrawerPin3 = b&0x04 != 0
		s.Offline = b&0x08 != 0
		s.WaitingRecovery = b&0x20 != 0
		s.FeedButtonPushed = b&0x40 != 0
	case 2:
		s.CoverOpen = b&0x04 != 0
		s.FeedingByButton = b&0x08 != 0
		s.PaperEndStop = b&0x20 != 0
		s.ErrorOccurred = b&0x40 != 0
	case 3:
		s.RecoverableError = b&0x04 != 0
		s.CutterError = b&0x08 != 0
		s.UnrecoverableError = b&0x20 != 0
		s.AutoRecoverableError = b&0x40 != 0
	case 4:
		s.PaperNearEnd = b&0x0C != 0
		s.PaperEnd = b&0x60 != 0
	default:
		return fmt.Errorf("%w: DLE EOT %d (want 1..4)", ErrBadArgument, n)
	}
	return nil
}

// ParseStatus parses the replies to DLE EOT 1, 2, 3 and 4, in that order.
// Fewer than four bytes parse the first len(b) requests; more is an error.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	if len(b) > 4 {
		return s, fmt.Errorf("%w: %d status bytes (want at most 4)", ErrBadStatus, len(b))
	}
	for i, v := range b {
		if err := s.Apply(i+1, v); err != nil {
			return Status{}, err
		}
	}
	return s, nil
}

// NoPaper reports paper end from either the paper sensor or the offline cause.
func (s Status) NoPaper() bool { return s.PaperEnd || s.PaperEndStop }

// Errored reports any error condition.
func (s Status) Errored() bool {
	return s.ErrorOccurred || s.RecoverableError || s.CutterError || s.UnrecoverableError || s.AutoRecoverableError
}

// Healthy reports whether the printer can print: online, cover closed,
// paper present, no error. Paper near end is only a warning.
func (s Status) Healthy() bool {
	return !s.Offline && !s.CoverOpen && !s.NoPaper() && !s.Errored()
}

// Problems lists what is wrong, e.g. "paper end, cover open"; "" when healthy.
func (s Status) Problems() string {
	var p []string
	add := func(c bool, what string) {
		if c {
			p = append(p, what)
		}
	}
	add(s.NoPaper(), "paper end")
	add(s.CoverOpen, "cover open")
	add(s.CutterError, "cutter error")
	add(s.UnrecoverableError, "unrecoverable error")
	add(s.RecoverableError, "recoverable error")
	add(s.AutoRecoverableError, "auto-recoverable error")
	add(s.ErrorOccurred && len(p) == 0, "error")
	add(s.Offline && len(p) == 0, "offline")
	return strings.Join(p, ", ")
}
