package shelf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCRC16(t *testing.T) {
	assert.Equal(t, uint16(0x4B37), CRC16([]byte("123456789")), "CRC-16/MODBUS check value")
	// The query of DEVICE-PROTOCOLS.md §3, `addr 03 0000 0002 CRC`.
	assert.Equal(t, []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B}, ReadHoldingRequest(1, 0, 2))
	assert.Equal(t, []byte{0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87}, ReadHoldingRequest(0x11, 0x6B, 3), "Modbus spec example")
}

func TestDecodeReadHolding(t *testing.T) {
	good := ReadHoldingResponse(1, []uint16{0x0001, 0x86A0})
	regs, err := DecodeReadHolding(good, 1, 2)
	require.NoError(t, err)
	assert.Equal(t, []uint16{0x0001, 0x86A0}, regs)
	assert.Equal(t, int32(100000), HighFirst.Int32(regs[0], regs[1]))

	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0x55
	_, err = DecodeReadHolding(badCRC, 1, 2)
	var ce *CRCError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrCRC)
	require.ErrorIs(t, err, ErrModbus)

	ex := appendCRC([]byte{1, 0x83, 0x02})
	_, err = DecodeReadHolding(ex, 1, 2)
	var ee *ExceptionError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, ExceptionError{Unit: 1, Function: 3, Code: ExIllegalDataAddress}, *ee)
	assert.Contains(t, err.Error(), "illegal data address")

	cases := map[string]struct {
		frame []byte
		want  error
	}{
		"empty":             {nil, ErrTruncated},
		"four bytes":        {good[:4], ErrTruncated},
		"cut in the data":   {good[:7], ErrTruncated},
		"extra byte":        {append(append([]byte(nil), good...), 0), ErrUnexpected},
		"other unit":        {ReadHoldingResponse(2, []uint16{1, 2}), ErrUnexpected},
		"wrong count":       {ReadHoldingResponse(1, []uint16{1, 2, 3}), ErrUnexpected},
		"other function":    {appendCRC([]byte{1, 0x04, 0x04, 0, 1, 0, 2}), ErrUnexpected},
		"exception bad CRC": {[]byte{1, 0x83, 0x02, 0, 0}, ErrCRC},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeReadHolding(c.frame, 1, 2)
			require.ErrorIs(t, err, c.want)
		})
	}
}

func TestWordOrder(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 123456, -123456, 1 << 30, -1 << 31} {
		for _, o := range []WordOrder{HighFirst, LowFirst} {
			r0, r1 := o.Split(v)
			assert.Equal(t, v, o.Int32(r0, r1), "%d %s", v, o)
		}
	}
	assert.Equal(t, int32(-2), HighFirst.Int32(0xFFFF, 0xFFFE))
	assert.Equal(t, int32(-2), LowFirst.Int32(0xFFFE, 0xFFFF))
	assert.Equal(t, int32(0x00010002), LowFirst.Int32(0x0002, 0x0001))
}

func TestInterFrame(t *testing.T) {
	assert.InDelta(t, 4.01e6, float64(interFrame(9600)), 0.01e6, "3.5 × 11 bits at 9600 baud ≈ 4.01 ms")
	assert.Equal(t, 1750000, int(interFrame(115200)), "fixed 1750 µs above 19200 baud")
}

func TestScale(t *testing.T) {
	assert.Equal(t, int64(1235), scale(12345, 1, 10))
	assert.Equal(t, int64(-1235), scale(-12345, 1, 10))
	assert.Equal(t, int64(12340), scale(1234, 10, 1))
}
