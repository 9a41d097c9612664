// Package shelfsim simulates weight shelves for tests, benchmarks and
// pos-demo, speaking the real wire formats:
//
//   - Indicator is a Modbus RTU slave (a load-cell weighing indicator) on
//     a pluggable pseudo-terminal (devices/serialport/ptysim). It answers
//     function 03 from its holding registers and can be told to send a bad
//     CRC, an exception, a truncated frame, or nothing at all, and can be
//     unplugged and replugged.
//   - Sensor is an MQTT shelf sensor that publishes JSON readings (the
//     payload devices/shelf.DecodeReadings accepts) with optional noise.
//
// The package deliberately does not import devices/shelf: its CRC and
// framing are written again from the Modbus specification, so a mistake
// in the driver cannot hide behind a helper the simulator shares.
package shelfsim

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/edgepos/edgepos/devices/serialport/ptysim"
)

// WordOrder says which register of a 32-bit value comes first.
type WordOrder int

// The word orders.
const (
	HighFirst WordOrder = iota
	LowFirst
)

// Fault is a misbehaviour the indicator shows for its next responses.
type Fault int

// The faults.
const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultBadCRC answers with the CRC's last byte flipped.
	FaultBadCRC
	// FaultException answers function|0x80 with the exception code given.
	FaultException
	// FaultTruncate sends only the first half of the answer.
	FaultTruncate
	// FaultSilent does not answer at all.
	FaultSilent
)

// Indicator is a simulated Modbus RTU weighing indicator. Its methods are
// safe for concurrent use.
type Indicator struct {
	dev  *ptysim.Device
	unit byte

	mu        sync.Mutex
	regs      map[uint16]uint16
	fault     Fault
	faultN    int // responses left with the fault; < 0: until Heal
	exCode    byte
	requests  uint64
	responses uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewIndicator plugs in an indicator with slave address unit, reachable at
// link (a path in a temp dir whose parent exists), and starts answering.
func NewIndicator(link string, unit byte) (*Indicator, error) {
	d, err := ptysim.New(link)
	if err != nil {
		return nil, err
	}
	in := &Indicator{dev: d, unit: unit, regs: map[uint16]uint16{}, stop: make(chan struct{})}
	in.wg.Add(1)
	go in.serve()
	return in, nil
}

// Path returns the path a driver should open.
func (in *Indicator) Path() string { return in.dev.Path() }

// SetRegister sets one holding register (0-based PDU address).
func (in *Indicator) SetRegister(addr, v uint16) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.regs[addr] = v
}

// SetWeight puts a 32-bit signed weight into registers addr and addr+1.
func (in *Indicator) SetWeight(addr uint16, v int32, o WordOrder) {
	hi, lo := uint16(uint32(v)>>16), uint16(uint32(v))
	if o == LowFirst {
		hi, lo = lo, hi
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.regs[addr], in.regs[addr+1] = hi, lo
}

// Inject makes the next n responses show fault f (n < 0: every response
// until Heal). code is the exception code for FaultException.
func (in *Indicator) Inject(f Fault, n int, code byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.fault, in.faultN, in.exCode = f, n, code
}

// Heal clears any fault.
func (in *Indicator) Heal() { in.Inject(FaultNone, 0, 0) }

// Requests returns how many well-formed requests to this unit arrived.
func (in *Indicator) Requests() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.requests
}

// Unplug makes the device vanish (its tty hangs up, its path goes).
func (in *Indicator) Unplug() error { return in.dev.Unplug() }

// Replug brings the device back on a new pseudo-terminal at the same path.
func (in *Indicator) Replug() error { return in.dev.Replug() }

// Close unplugs the indicator for good and stops answering.
func (in *Indicator) Close() error {
	select {
	case <-in.stop:
		return nil
	default:
	}
	close(in.stop)
	err := in.dev.Close()
	in.wg.Wait()
	return err
}

// serve reads requests and answers them. While unplugged it waits for the
// replug.
func (in *Indicator) serve() {
	defer in.wg.Done()
	buf := make([]byte, 256)
	var frame []byte
	var last time.Time
	for {
		select {
		case <-in.stop:
			return
		default:
		}
		n, err := in.dev.Read(buf)
		if err != nil {
			// Unplugged (or just closed by Unplug): wait for Replug.
			frame = frame[:0]
			select {
			case <-in.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		// A gap longer than t3.5 ends a frame (Modbus over Serial Line
		// §2.5.1.1); with a pty it is generous, scheduling is not a line.
		if len(frame) > 0 && now.Sub(last) > 50*time.Millisecond {
			frame = frame[:0]
		}
		last = now
		frame = append(frame, buf[:n]...)
		for len(frame) >= 8 {
			req := frame[:8]
			if crc(req[:6]) != binary.LittleEndian.Uint16(req[6:]) {
				// A slave ignores a frame with a bad CRC; resynchronise by
				// dropping one byte.
				frame = frame[1:]
				continue
			}
			frame = frame[8:]
			if req[0] != in.unit {
				continue // another slave's, or broadcast: no answer
			}
			if resp := in.answer(req); resp != nil {
				_, _ = in.dev.Write(resp)
			}
		}
	}
}

// answer builds the response to one 8-byte request, with any fault.
func (in *Indicator) answer(req []byte) []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requests++
	fn := req[1]
	start := binary.BigEndian.Uint16(req[2:])
	qty := binary.BigEndian.Uint16(req[4:])
	fault, code := in.fault, in.exCode
	if in.faultN > 0 {
		in.faultN--
		if in.faultN == 0 {
			in.fault = FaultNone
		}
	}
	if fault == FaultSilent {
		return nil
	}
	var resp []byte
	switch {
	case fault == FaultException:
		resp = exception(in.unit, fn, code)
	case fn != 0x03:
		resp = exception(in.unit, fn, 0x01) // illegal function
	case qty < 1 || qty > 125:
		resp = exception(in.unit, fn, 0x03) // illegal data value
	default:
		resp = []byte{in.unit, 0x03, byte(2 * qty)}
		for a := uint32(start); a < uint32(start)+uint32(qty); a++ {
			v, ok := in.regs[uint16(a)]
			if a > 0xFFFF || !ok {
				resp = exception(in.unit, fn, 0x02) // illegal data address
				break
			}
			resp = binary.BigEndian.AppendUint16(resp, v)
		}
		if resp[1] == 0x03 {
			resp = binary.LittleEndian.AppendUint16(resp, crc(resp))
		}
	}
	in.responses++
	switch fault {
	case FaultBadCRC:
		resp[len(resp)-1] ^= 0xFF
	case FaultTruncate:
		resp = resp[:len(resp)/2]
	}
	return resp
}

func exception(unit, fn, code byte) []byte {
	b := []byte{unit, fn | 0x80, code}
	return binary.LittleEndian.AppendUint16(b, crc(b))
}

// crc is CRC-16/MODBUS, computed bytewise from its definition.
func crc(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c ^= uint16(x)
		for i := 0; i < 8; i++ {
			lsb := c & 1
			c >>= 1
			if lsb == 1 {
				c ^= 0xA001
			}
		}
	}
	return c
}

// String names a fault (for test messages).
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultBadCRC:
		return "bad-crc"
	case FaultException:
		return "exception"
	case FaultTruncate:
		return "truncate"
	case FaultSilent:
		return "silent"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}
