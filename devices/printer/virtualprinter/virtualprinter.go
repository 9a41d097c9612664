// Package virtualprinter is a virtual ESC/POS receipt printer for tests,
// benchmarks and pos-demo. It listens on TCP (127.0.0.1:0 in tests, like a
// printer's port 9100) or serves any byte stream (the device side of a
// pseudo-terminal, for the serial and USB transports); it interprets the
// commands escpos.Builder emits, records every job (a cut ends one),
// renders jobs as text and as PNG, and answers DLE EOT n and GS r n from a
// state a test sets: paper out (now, or after so many more bytes of a
// job), paper near end, cover open, offline, or never answering; it can
// put garbage before its answers and drop the connection in the middle of
// a job. It counts jobs, drawer kicks, unknown bytes and TCP sessions.
//
// Like a real printer with no paper, it prints nothing while the paper is
// out: a job that runs into paper end is recorded as interrupted
// (Partials), not as printed (Jobs).
package virtualprinter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Printer is a virtual printer. Its methods are safe for concurrent use.
type Printer struct {
	mu        sync.Mutex
	p         *parser
	paperOut  bool
	nearEnd   bool
	coverOpen bool
	offline   bool
	silent    bool
	garbage   []byte
	// dropAt and paperOutAt are job byte counts (parser.jobBytes) at which
	// to drop the session or run out of paper; -1 = not armed.
	dropAt     int
	paperOutAt int
	statusN    int
	bufferedN  int
	conns      int
	maxConns   int
	accepted   int
	changed    chan struct{} // closed and replaced on every recorded job
	ended      chan struct{} // closed and replaced when a TCP session ends

	ln     net.Listener
	wg     sync.WaitGroup
	closed chan struct{}
	open   map[net.Conn]struct{}
}

// New returns a healthy virtual printer with paper, not yet listening.
func New() *Printer {
	return &Printer{p: newParser(), dropAt: -1, paperOutAt: -1, changed: make(chan struct{}), ended: make(chan struct{}),
		closed: make(chan struct{}), open: map[net.Conn]struct{}{}}
}

// Listen starts accepting TCP connections on addr ("127.0.0.1:0") and
// returns the bound address.
func (v *Printer) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("virtual printer listen %s: %w", addr, err)
	}
	v.mu.Lock()
	if v.ln != nil {
		v.mu.Unlock()
		ln.Close()
		return "", errors.New("virtual printer: already listening")
	}
	v.ln = ln
	v.mu.Unlock()
	v.wg.Add(1)
	go v.accept(ln)
	return ln.Addr().String(), nil
}

// Addr returns the listening address ("" before Listen).
func (v *Printer) Addr() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ln == nil {
		return ""
	}
	return v.ln.Addr().String()
}

func (v *Printer) accept(ln net.Listener) {
	defer v.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		v.mu.Lock()
		select {
		case <-v.closed:
			v.mu.Unlock()
			c.Close()
			return
		default:
		}
		v.open[c] = struct{}{}
		v.accepted++
		v.mu.Unlock()
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.waitTurn()
			_ = v.Serve(context.Background(), c)
			c.Close()
			v.mu.Lock()
			delete(v.open, c)
			v.conns--
			close(v.ended)
			v.ended = make(chan struct{})
			v.mu.Unlock()
		}()
	}
}

// sessionGrace is how long a new session waits for the one before it to
// end. A driver closes its socket before dialling again, but the EOF may
// reach the old session's goroutine after the new connection arrives.
const sessionGrace = 500 * time.Millisecond

// waitTurn serves sessions one at a time, like a printer's port 9100: a
// new session waits until the previous one has ended. One still open
// after sessionGrace is a second session in parallel: it is counted in
// MaxConcurrentConns and served anyway, so a test sees the fault rather
// than a hang.
func (v *Printer) waitTurn() {
	grace := time.NewTimer(sessionGrace)
	defer grace.Stop()
	for {
		v.mu.Lock()
		if v.conns == 0 {
			break
		}
		ended := v.ended
		v.mu.Unlock()
		select {
		case <-ended:
			continue
		case <-v.closed:
			v.mu.Lock()
		case <-grace.C:
			v.mu.Lock()
		}
		break
	}
	v.conns++
	v.maxConns = max(v.maxConns, v.conns)
	v.mu.Unlock()
}

// ErrDropped is returned by Serve when DropAfter cut the session.
var ErrDropped = errors.New("virtual printer dropped the connection")

// Serve runs one session on rw (a TCP connection, or the device side of a
// pseudo-terminal) until reading fails, ctx is done (checked between
// reads: close rw to interrupt a blocked read), or DropAfter cuts it. A
// job not finished when the session ends is recorded as interrupted.
func (v *Printer) Serve(ctx context.Context, rw io.ReadWriter) error {
	buf := make([]byte, 4096)
	defer v.endSession()
	for ctx.Err() == nil {
		n, err := rw.Read(buf)
		if n > 0 {
			replies, drop := v.handle(buf[:n])
			if len(replies) > 0 {
				if _, werr := rw.Write(replies); werr != nil {
					return werr
				}
			}
			if drop {
				if c, ok := rw.(io.Closer); ok {
					_ = c.Close()
				}
				return ErrDropped
			}
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// handle feeds bytes to the interpreter and returns the replies. While a
// trigger is armed it feeds one byte at a time, so the trigger fires at
// the first command boundary past its byte count.
func (v *Printer) handle(b []byte) (replies []byte, drop bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	jobs := len(v.p.jobs) + len(v.p.partial)
	defer func() {
		if len(v.p.jobs)+len(v.p.partial) != jobs {
			close(v.changed)
			v.changed = make(chan struct{})
		}
	}()
	for len(b) > 0 {
		chunk := b
		if v.dropAt >= 0 || v.paperOutAt >= 0 {
			chunk = b[:1]
		}
		b = b[len(chunk):]
		for _, r := range v.p.feed(chunk) {
			replies = append(replies, v.answer(r)...)
		}
		if v.paperOutAt >= 0 && v.p.jobBytes >= v.paperOutAt {
			v.paperOutAt = -1
			v.paperOut = true
			v.p.noPaper = true
		}
		if v.dropAt >= 0 && v.p.jobBytes >= v.dropAt {
			v.dropAt = -1
			return replies, true
		}
	}
	return replies, false
}

// answer returns the reply to one request: garbage first if set, then
// the status byte unless silent.
func (v *Printer) answer(r request) []byte {
	if r.realtime {
		v.statusN++
	} else {
		v.bufferedN++
	}
	out := append([]byte(nil), v.garbage...)
	if v.silent {
		return out
	}
	if r.realtime {
		return append(out, v.statusByte(int(r.n)))
	}
	return append(out, v.paperSensorByte())
}

// statusByte answers DLE EOT n from the current state
// (DEVICE-PROTOCOLS.md §1, real-time status table; a printer without paper
// answers 1A 32 7E to n = 1, 2, 4).
func (v *Printer) statusByte(n int) byte {
	b := byte(0x12)
	switch n {
	case 1:
		if v.offline || v.paperOut || v.coverOpen {
			b |= 0x08
		}
	case 2:
		if v.coverOpen {
			b |= 0x04
		}
		if v.paperOut {
			b |= 0x20
		}
	case 4:
		if v.paperOut {
			b |= 0x6C
		} else if v.nearEnd {
			b |= 0x0C
		}
	}
	return b
}

// paperSensorByte answers GS r 1: 03 near end, 0C paper end.
func (v *Printer) paperSensorByte() byte {
	switch {
	case v.paperOut:
		return 0x0F
	case v.nearEnd:
		return 0x03
	}
	return 0
}

// endSession records a job cut short by the end of a session.
func (v *Printer) endSession() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.p.endLine(false)
	v.p.pending = nil
	if len(v.p.cur.Raw) > 0 || len(v.p.cur.Items) > 0 {
		v.p.finish("connection dropped")
		close(v.changed)
		v.changed = make(chan struct{})
	}
}

// SetPaperOut sets the paper-end state. While the paper is out nothing
// is printed.
func (v *Printer) SetPaperOut(on bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.paperOut, v.p.noPaper = on, on
	if !on {
		v.paperOutAt = -1
	}
}

// PaperOutAfter makes the paper run out once n more bytes of job data
// (status requests not counted) have arrived: the rest of that job is not
// printed.
func (v *Printer) PaperOutAfter(n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.paperOutAt = v.p.jobBytes + n
}

// SetPaperNearEnd sets the paper-near-end warning.
func (v *Printer) SetPaperNearEnd(on bool) { v.set(&v.nearEnd, on) }

// SetCoverOpen sets the cover-open state.
func (v *Printer) SetCoverOpen(on bool) { v.set(&v.coverOpen, on) }

// SetOffline sets the offline state.
func (v *Printer) SetOffline(on bool) { v.set(&v.offline, on) }

// SetSilent makes the printer never answer status requests (a printer
// whose back channel is broken, or one that is busy or hung).
func (v *Printer) SetSilent(on bool) { v.set(&v.silent, on) }

// SetReplyGarbage makes the printer send garbage before every status
// answer, or instead of it while silent (nil stops it). Bytes that look like status answers are not
// garbage to a driver: use ones without the fixed bits (0x00, 0xFF, 'A').
func (v *Printer) SetReplyGarbage(g []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.garbage = append([]byte(nil), g...)
}

func (v *Printer) set(f *bool, on bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	*f = on
}

// DropAfter makes the printer close the connection once n more bytes of
// job data (status requests not counted) have arrived (once).
func (v *Printer) DropAfter(n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.dropAt = v.p.jobBytes + n
}

// Jobs returns the jobs printed whole (each ended by a cut).
func (v *Printer) Jobs() []Job {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Job(nil), v.p.jobs...)
}

// Partials returns jobs that did not come out whole: cut short by a
// dropped connection or by paper end (see Job.Interrupted).
func (v *Printer) Partials() []Job {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Job(nil), v.p.partial...)
}

// Changed returns a channel closed when the next job (whole or
// interrupted) is recorded, for tests to wait on.
func (v *Printer) Changed() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.changed
}

// JobBytes returns how many bytes other than status requests the printer
// has received: 0 means no byte of any job reached it.
func (v *Printer) JobBytes() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.p.jobBytes
}

// StatusRequests returns how many DLE EOT requests arrived.
func (v *Printer) StatusRequests() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.statusN
}

// BufferedRequests returns how many GS r requests arrived.
func (v *Printer) BufferedRequests() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bufferedN
}

// DrawerKicks returns how many drawer pulses (ESC p, DLE DC4) arrived.
func (v *Printer) DrawerKicks() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.p.drawer
}

// Unknown returns how many bytes were not understood.
func (v *Printer) Unknown() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.p.unknown
}

// MaxConcurrentConns returns the most TCP sessions served at once (see
// waitTurn); a well-behaved driver keeps it at 1.
func (v *Printer) MaxConcurrentConns() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.maxConns
}

// Accepted returns how many TCP sessions were accepted.
func (v *Printer) Accepted() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.accepted
}

// Close stops listening, closes open sessions and waits for them.
func (v *Printer) Close() error {
	v.mu.Lock()
	select {
	case <-v.closed:
		v.mu.Unlock()
		return nil
	default:
	}
	close(v.closed)
	ln := v.ln
	for c := range v.open {
		c.Close()
	}
	v.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	v.wg.Wait()
	return err
}

// Parse interprets a complete ESC/POS stream offline and returns its
// jobs, whole and interrupted, in order (for golden tests, previews and
// tools). Unknown reports the bytes it did not understand.
func Parse(data []byte) (jobs []Job, unknown int) {
	p := newParser()
	p.feed(data)
	p.endLine(false)
	all := append(append([]Job(nil), p.jobs...), p.partial...)
	if len(p.cur.Raw) > 0 || len(p.cur.Items) > 0 {
		p.cur.Interrupted = "no cut"
		all = append(all, p.cur)
	}
	return all, p.unknown
}
