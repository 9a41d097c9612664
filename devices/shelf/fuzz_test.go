package shelf

import (
	"errors"
	"testing"
)

// FuzzModbusResponse feeds arbitrary bytes to the RTU response decoder:
// it must never panic, must wrap ErrModbus on every failure, and whatever
// it accepts must be exactly the frame the registers encode.
func FuzzModbusResponse(f *testing.F) {
	f.Add(ReadHoldingResponse(1, []uint16{0x0001, 0x86A0}), byte(1), uint8(2))
	f.Add(appendCRC([]byte{1, 0x83, 0x02}), byte(1), uint8(2))
	f.Add([]byte{1, 3, 0xFF}, byte(1), uint8(2))
	f.Add([]byte{}, byte(0), uint8(0))
	f.Fuzz(func(t *testing.T, frame []byte, unit byte, qty uint8) {
		_ = responseLen(frame)
		regs, err := DecodeReadHolding(frame, unit, int(qty))
		if err != nil {
			if !errors.Is(err, ErrModbus) {
				t.Fatalf("error %v does not wrap ErrModbus", err)
			}
			return
		}
		if len(regs) != int(qty) {
			t.Fatalf("%d registers for %d asked", len(regs), qty)
		}
		if got := ReadHoldingResponse(unit, regs); string(got) != string(frame) {
			t.Fatalf("accepted % x, which re-encodes as % x", frame, got)
		}
	})
}

// FuzzShelfReading feeds arbitrary payloads to the MQTT JSON decoder: no
// panic, every failure wraps ErrPayload, every reading is in range.
func FuzzShelfReading(f *testing.F) {
	for _, s := range []string{
		`{"slot":0,"weight_g":1234,"at":"2026-03-01T09:00:00Z"}`,
		`{"at":"2026-03-01T09:00:00Z","readings":[{"slot":0,"weight_g":1234},{"slot":1,"weight_g":87.5}]}`,
		`{"slot":0,"weight_g":1e308}`, `null`, `[]`, `{"readings":null}`, `CHANGE:1234`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := DecodeReadings(b, DefaultMaxPayload)
		if err != nil {
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("error %v does not wrap ErrPayload", err)
			}
			return
		}
		if len(rs) == 0 || len(rs) > MaxReadingsPerMessage {
			t.Fatalf("%d readings accepted", len(rs))
		}
		for _, r := range rs {
			if r.Slot < 0 || r.Slot > MaxSlot || r.Grams > maxAbsGrams || r.Grams < -maxAbsGrams {
				t.Fatalf("out-of-range reading accepted: %+v", r)
			}
		}
	})
}
