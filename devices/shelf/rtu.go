package shelf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/serialport"
)

// RTUClient is a Modbus RTU master on one open serial port: one request
// at a time, as RS-485 half duplex demands. A goroutine of its own reads
// the port (so response timeouts are not bound to tarm's 100 ms read
// resolution); Close stops it before closing the port (DEPENDENCIES.md:
// tarm/serial "close the port only after the reader goroutine has
// returned").
//
// Inter-frame handling (Modbus over Serial Line §2.5.1.1): a request is
// sent only after t3.5 of silence since the last byte either way; bytes
// waiting before a request (a late answer to an earlier one) are
// discarded; after any failed exchange the line must be quiet for a while
// before the next request, so a slave that answers late is never taken
// to be answering the next question.
type RTUClient struct {
	port    serialport.Port
	timeout time.Duration
	t35     time.Duration
	quiet   time.Duration

	chunks chan []byte
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stale atomic.Uint64 // bytes discarded before requests

	// Only the goroutine calling ReadHolding uses the rest.
	dead   error
	dirty  bool
	lastIO time.Time
}

// Stale returns how many bytes were discarded as stale (late answers,
// line noise) before requests. Safe from any goroutine.
func (c *RTUClient) Stale() uint64 { return c.stale.Load() }

// NewRTUClient starts a client on port at baud (for the t3.5 gap) with
// the given response timeout (default 500 ms). Close it, not the port.
func NewRTUClient(port serialport.Port, baud int, timeout time.Duration) *RTUClient {
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	t35 := interFrame(baud)
	ctx, cancel := context.WithCancel(context.Background())
	c := &RTUClient{port: port, timeout: timeout, t35: t35, quiet: max(10*t35, 50*time.Millisecond),
		chunks: make(chan []byte, 64), errc: make(chan error, 1), cancel: cancel}
	c.wg.Add(1)
	go c.read(ctx)
	return c
}

// read copies what the port delivers to c.chunks until the port fails or
// ctx ends. serialport reports "nothing yet" as ErrTimeout, not a failure.
func (c *RTUClient) read(ctx context.Context) {
	defer c.wg.Done()
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		n, err := c.port.Read(buf)
		if n > 0 {
			b := append([]byte(nil), buf[:n]...)
			select {
			case c.chunks <- b:
			case <-ctx.Done():
				return
			}
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			c.errc <- err
			return
		}
	}
}

// Close stops the reader, waits for it, and closes the port.
func (c *RTUClient) Close() error {
	c.cancel()
	c.wg.Wait()
	return c.port.Close()
}

// ReadHolding asks unit for qty holding registers from start (function
// 03) and returns them. Protocol errors wrap ErrModbus (*CRCError,
// *ExceptionError, ErrTimeout, ErrTruncated, ErrUnexpected); any other
// error is the port's (ErrGone when unplugged) and the client is then
// unusable.
func (c *RTUClient) ReadHolding(ctx context.Context, unit byte, start, qty uint16) ([]uint16, error) {
	if qty < 1 || qty > MaxReadRegisters {
		return nil, fmt.Errorf("%w: %d registers (want 1..%d)", ErrModbus, qty, MaxReadRegisters)
	}
	if err := c.settle(ctx); err != nil {
		return nil, err
	}
	if _, err := c.port.Write(ReadHoldingRequest(unit, start, qty)); err != nil {
		c.dead = err
		return nil, err
	}
	c.lastIO = time.Now()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var buf []byte
	for {
		if n := responseLen(buf); n > 0 && len(buf) >= n {
			regs, err := DecodeReadHolding(buf[:n], unit, int(qty))
			if err != nil || len(buf) > n {
				c.dirty = true
			}
			return regs, err
		}
		select {
		case b := <-c.chunks:
			buf = append(buf, b...)
			c.lastIO = time.Now()
		case err := <-c.errc:
			c.dead = err
			return nil, err
		case <-timer.C:
			c.dirty = true
			if len(buf) > 0 {
				need := responseLen(buf)
				if need == 0 {
					need = 5
				}
				return nil, fmt.Errorf("%w: %d of %d bytes within %s", ErrTruncated, len(buf), need, c.timeout)
			}
			return nil, fmt.Errorf("%w: unit %d sent nothing within %s", ErrTimeout, unit, c.timeout)
		case <-ctx.Done():
			c.dirty = true
			return nil, ctx.Err()
		}
	}
}

// settle prepares the line for a request: discard waiting bytes, wait for
// quiet after a failed exchange, and keep the t3.5 gap.
func (c *RTUClient) settle(ctx context.Context) error {
	if c.dead != nil {
		return c.dead
	}
	for drained := false; !drained; {
		select {
		case b := <-c.chunks:
			c.stale.Add(uint64(len(b)))
			c.lastIO = time.Now()
		case err := <-c.errc:
			c.dead = err
			return err
		default:
			drained = true
		}
	}
	if c.dirty {
		deadline := time.Now().Add(c.timeout)
		q := time.NewTimer(c.quiet)
		for quiet := false; !quiet && time.Now().Before(deadline); {
			select {
			case b := <-c.chunks:
				c.stale.Add(uint64(len(b)))
				c.lastIO = time.Now()
				q.Reset(c.quiet)
			case err := <-c.errc:
				q.Stop()
				c.dead = err
				return err
			case <-q.C:
				quiet = true
			case <-ctx.Done():
				q.Stop()
				return ctx.Err()
			}
		}
		q.Stop()
		c.dirty = false
	}
	if d := c.t35 - time.Since(c.lastIO); d > 0 {
		return devices.Sleep(ctx, d)
	}
	return nil
}

// runModbus owns the serial port: it opens it, polls, and reopens it with
// backoff when the device goes away, until ctx ends.
func (s *Shelf) runModbus(ctx context.Context) {
	defer s.wg.Done()
	m := s.cfg.Modbus
	bo := devices.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	connected := false
	for ctx.Err() == nil {
		port, err := s.open(m.Port)
		if err != nil {
			s.setTransport("not connected: " + err.Error())
			if ok, n := s.connLog.Allow(s.now()); ok {
				s.log.Warn("shelf not connected", devices.LogPath, m.Port.Path, devices.LogErr, err, "suppressed", n)
			}
			if devices.Sleep(ctx, bo.Next()) != nil {
				return
			}
			continue
		}
		bo.Reset()
		if connected {
			s.reconnects.Add(1)
			s.log.Info("shelf reconnected", devices.LogPath, m.Port.Path)
		}
		connected = true
		s.connLog.Reset()
		c := NewRTUClient(port, m.Port.Baud, m.ResponseTimeout)
		err = s.poll(ctx, c)
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if ctx.Err() != nil {
			return
		}
		s.setTransport("disconnected: " + err.Error())
		s.log.Warn("shelf disconnected", devices.LogPath, m.Port.Path, devices.LogErr, err)
		if devices.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// poll reads every slot once per PollInterval. A protocol error costs
// that slot its reading this round (and is counted); a port error ends
// the poll so the port is reopened.
func (s *Shelf) poll(ctx context.Context, c *RTUClient) error {
	m := s.cfg.Modbus
	t := time.NewTicker(m.PollInterval)
	defer t.Stop()
	for {
		rs := make([]Reading, 0, len(s.cfg.Slots))
		var failed error
		for _, sl := range s.cfg.Slots {
			regs, err := c.ReadHolding(ctx, m.UnitID, sl.Register, 2)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				if !errors.Is(err, ErrModbus) {
					return err
				}
				s.modbusFailed(sl, err)
				failed = fmt.Errorf("slot %d (register %d): %w", sl.Slot, sl.Register, err)
				continue
			}
			raw := int64(m.WordOrder.Int32(regs[0], regs[1]))
			rs = append(rs, Reading{Slot: sl.Slot, Grams: scale(raw, m.ScaleMul, m.ScaleDiv)})
		}
		if len(rs) > 0 {
			select {
			case s.inbox <- input{at: s.now(), readings: rs}:
			case <-ctx.Done():
				return nil
			}
		}
		if failed != nil {
			s.setTransport("unit " + fmt.Sprint(m.UnitID) + ": " + failed.Error())
		} else {
			s.pollLog.Reset()
			s.setTransport("")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// modbusFailed counts a failed exchange by kind and logs it (throttled).
func (s *Shelf) modbusFailed(sl Slot, err error) {
	var ce *CRCError
	var ex *ExceptionError
	switch {
	case errors.As(err, &ex):
		s.exceptions.Add(1)
	case errors.As(err, &ce):
		s.crcErrors.Add(1)
	case errors.Is(err, ErrTimeout):
		s.timeouts.Add(1)
	case errors.Is(err, ErrTruncated):
		s.truncated.Add(1)
	default:
		s.unexpected.Add(1)
	}
	if ok, n := s.pollLog.Allow(s.now()); ok {
		s.log.Warn("shelf modbus read failed", "slot", sl.Slot, "register", sl.Register, devices.LogErr, err, "suppressed", n)
	}
}

// scale returns raw × mul ÷ div rounded half away from zero.
func scale(raw, mul, div int64) int64 {
	v := raw * mul
	if v < 0 {
		return -((-v + div/2) / div)
	}
	return (v + div/2) / div
}
