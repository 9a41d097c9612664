package shelf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Modbus RTU, the part a weighing indicator needs (DEVICE-PROTOCOLS.md §3
// [44]: "Read with function 03 … gross and net weight are 32-bit signed
// values in H/L registers … word order is configurable … A query is
// `addr 03 0000 0002 CRC`"). The framing follows the Modbus over Serial
// Line specification: address, PDU, CRC-16/MODBUS low byte first.

// FuncReadHolding is Modbus function 03, Read Holding Registers.
const FuncReadHolding = 0x03

// MaxReadRegisters is the most registers one function 03 request may ask
// for (the PDU limit of 125; many indicators allow fewer, CAS 32).
const MaxReadRegisters = 125

// Modbus errors.
var (
	// ErrModbus is wrapped by every Modbus protocol error.
	ErrModbus = errors.New("modbus")
	// ErrCRC is wrapped by a *CRCError.
	ErrCRC = fmt.Errorf("%w: bad CRC", ErrModbus)
	// ErrTruncated is a response that stopped before its end.
	ErrTruncated = fmt.Errorf("%w: truncated frame", ErrModbus)
	// ErrTimeout is no (complete) response within the response timeout.
	ErrTimeout = fmt.Errorf("%w: response timeout", ErrModbus)
	// ErrUnexpected is a well-formed frame that does not answer the
	// request (another slave address, another function, a wrong length).
	ErrUnexpected = fmt.Errorf("%w: unexpected response", ErrModbus)
)

// CRCError is a response whose CRC does not match its bytes (line noise,
// two slaves answering at once, a baud-rate mismatch).
type CRCError struct {
	Got, Want uint16
}

func (e *CRCError) Error() string {
	return fmt.Sprintf("modbus: bad CRC: frame says %04x, bytes give %04x", e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrCRC) hold.
func (e *CRCError) Unwrap() error { return ErrCRC }

// Exception codes of the Modbus application protocol.
const (
	ExIllegalFunction    = 0x01
	ExIllegalDataAddress = 0x02
	ExIllegalDataValue   = 0x03
	ExServerFailure      = 0x04
	ExAcknowledge        = 0x05
	ExServerBusy         = 0x06
	ExGatewayPath        = 0x0A
	ExGatewayTarget      = 0x0B
)

// ExceptionError is an exception response: the slave answered
// function|0x80 and a code.
type ExceptionError struct {
	Unit     byte
	Function byte
	Code     byte
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus: unit %d function %02x: exception %02x (%s)", e.Unit, e.Function, e.Code, exceptionName(e.Code))
}

// Unwrap makes errors.Is(err, ErrModbus) hold.
func (e *ExceptionError) Unwrap() error { return ErrModbus }

func exceptionName(c byte) string {
	switch c {
	case ExIllegalFunction:
		return "illegal function"
	case ExIllegalDataAddress:
		return "illegal data address"
	case ExIllegalDataValue:
		return "illegal data value"
	case ExServerFailure:
		return "server device failure"
	case ExAcknowledge:
		return "acknowledge"
	case ExServerBusy:
		return "server device busy"
	case ExGatewayPath:
		return "gateway path unavailable"
	case ExGatewayTarget:
		return "gateway target failed to respond"
	}
	return "unknown"
}

// CRC16 returns the CRC-16/MODBUS of b (reflected polynomial 0xA001,
// initial 0xFFFF). On the wire it follows the frame low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendCRC appends the CRC of b, low byte first.
func appendCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint16(b, CRC16(b))
}

// ReadHoldingRequest returns the RTU frame asking unit for qty holding
// registers from start (a 0-based PDU address: register 40001 is 0).
func ReadHoldingRequest(unit byte, start, qty uint16) []byte {
	b := []byte{unit, FuncReadHolding, byte(start >> 8), byte(start), byte(qty >> 8), byte(qty)}
	return appendCRC(b)
}

// ReadHoldingResponse returns the RTU frame a slave sends for regs (for
// simulators and tests).
func ReadHoldingResponse(unit byte, regs []uint16) []byte {
	b := []byte{unit, FuncReadHolding, byte(2 * len(regs))}
	for _, r := range regs {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return appendCRC(b)
}

// responseLen says how long the response that starts buf is: the full
// length once enough of it is there to tell, or 0 when more bytes are
// needed first. An exception is 5 bytes; a function 03 answer is 5 plus
// its byte count.
func responseLen(buf []byte) int {
	if len(buf) < 3 {
		return 0
	}
	if buf[1]&0x80 != 0 {
		return 5
	}
	if buf[1] == FuncReadHolding {
		return 5 + int(buf[2])
	}
	return len(buf) // not ours: take what is there and let decode refuse it
}

// DecodeReadHolding checks one complete RTU frame answering a function 03
// request of qty registers to unit and returns the registers. It returns
// ErrTruncated for a frame too short to hold its own length, a *CRCError,
// an *ExceptionError, or ErrUnexpected (another unit, function or length).
func DecodeReadHolding(frame []byte, unit byte, qty int) ([]uint16, error) {
	if len(frame) < 5 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTruncated, len(frame))
	}
	n := responseLen(frame)
	if n > len(frame) {
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, len(frame), n)
	}
	if n < len(frame) {
		return nil, fmt.Errorf("%w: %d bytes after the end of the frame", ErrUnexpected, len(frame)-n)
	}
	body := frame[:n-2]
	got := binary.LittleEndian.Uint16(frame[n-2:])
	if want := CRC16(body); got != want {
		return nil, &CRCError{Got: got, Want: want}
	}
	if frame[0] != unit {
		return nil, fmt.Errorf("%w: from unit %d, asked unit %d", ErrUnexpected, frame[0], unit)
	}
	if frame[1] == FuncReadHolding|0x80 {
		return nil, &ExceptionError{Unit: frame[0], Function: FuncReadHolding, Code: frame[2]}
	}
	if frame[1] != FuncReadHolding {
		return nil, fmt.Errorf("%w: function %02x, asked %02x", ErrUnexpected, frame[1], FuncReadHolding)
	}
	if int(frame[2]) != 2*qty {
		return nil, fmt.Errorf("%w: %d data bytes, asked %d registers", ErrUnexpected, frame[2], qty)
	}
	regs := make([]uint16, qty)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(frame[3+2*i:])
	}
	return regs, nil
}

// WordOrder is the order of the two 16-bit registers of a 32-bit value.
type WordOrder string

// The word orders (DEVICE-PROTOCOLS.md §3: "word order is configurable").
const (
	// HighFirst: the first register holds the high 16 bits (CAS, Laumas default).
	HighFirst WordOrder = "high_first"
	// LowFirst: the first register holds the low 16 bits.
	LowFirst WordOrder = "low_first"
)

// Int32 joins two registers into a signed 32-bit value in order o.
func (o WordOrder) Int32(r0, r1 uint16) int32 {
	if o == LowFirst {
		r0, r1 = r1, r0
	}
	return int32(uint32(r0)<<16 | uint32(r1))
}

// Split is Int32's inverse: the two registers holding v in order o.
func (o WordOrder) Split(v int32) (r0, r1 uint16) {
	hi, lo := uint16(uint32(v)>>16), uint16(uint32(v))
	if o == LowFirst {
		return lo, hi
	}
	return hi, lo
}

// charTime is how long one RTU character (11 bits: start, 8 data, parity
// or a second stop, stop) takes at baud.
func charTime(baud int) time.Duration {
	if baud <= 0 {
		baud = 9600
	}
	return time.Duration(11 * int64(time.Second) / int64(baud))
}

// interFrame is the silent interval t3.5 that separates RTU frames: 3.5
// characters, fixed at 1750 µs above 19200 baud (Modbus over Serial Line
// §2.5.1.1).
func interFrame(baud int) time.Duration {
	if baud > 19200 {
		return 1750 * time.Microsecond
	}
	return charTime(baud) * 7 / 2
}
