package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the chaos run (a store agent or HQ),
// re-executed from this binary so a SIGKILL is a real crash of real code.
// It can be started again after it died; its stderr is appended to a log
// file across restarts. Its stdout carries "ready …" and "status k=v …"
// lines.
type proc struct {
	name string
	args []string
	log  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{} // closed when the current process has been waited for
	waitErr  error
	expected bool              // the parent killed or stopped it on purpose
	ready    chan string       // the first "ready" line of the current process
	status   map[string]string // the latest status line's fields
	statusAt time.Time
	starts   int
	// unexpected lists exits the parent did not cause.
	unexpected []string
}

func newProc(name, log string, args ...string) *proc {
	return &proc{name: name, log: log, args: args}
}

// start runs the child and returns without waiting for "ready".
func (p *proc) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, p.args...)
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	fmt.Fprintf(logf, "--- %s start #%d at %s\n", p.name, p.starts+1, time.Now().UTC().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	ready := make(chan string, 1)
	p.mu.Lock()
	p.cmd, p.stdin, p.exited, p.ready, p.expected = cmd, in, exited, ready, false
	p.status, p.statusAt = nil, time.Time{}
	p.starts++
	p.mu.Unlock()
	// The reader owns the process: it reads stdout to its end, then waits
	// for the process, so kill and term only signal and wait on exited.
	go func() {
		defer close(exited)
		defer logf.Close()
		sc := bufio.NewScanner(out)
		sentReady := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ready") && !sentReady:
				sentReady = true
				ready <- line
			case strings.HasPrefix(line, "status "):
				st := parseKV(strings.TrimPrefix(line, "status "))
				p.mu.Lock()
				p.status, p.statusAt = st, time.Now()
				p.mu.Unlock()
			}
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		if !p.expected {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited on its own: %v (see %s)", p.name, err, p.log))
		}
		p.mu.Unlock()
	}()
	return nil
}

// waitReady waits for the child's "ready" line and returns it.
func (p *proc) waitReady(limit time.Duration) (string, error) {
	p.mu.Lock()
	ready, exited := p.ready, p.exited
	p.mu.Unlock()
	select {
	case l := <-ready:
		return l, nil
	case <-exited:
		return "", fmt.Errorf("%s exited before it was ready (see %s)", p.name, p.log)
	case <-time.After(limit):
		return "", fmt.Errorf("%s not ready within %s (see %s)", p.name, limit, p.log)
	}
}

// signal sends sig to the running child; expected marks the exit it may
// cause as the parent's doing.
func (p *proc) signal(sig syscall.Signal, expected bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	if expected {
		p.expected = true
	}
	return p.cmd.Process.Signal(sig)
}

// kill crashes the child with SIGKILL and waits until it is gone.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL, true); err != nil {
		return err
	}
	return p.wait(30 * time.Second)
}

// term asks the child to shut down cleanly (SIGTERM), and kills it when it
// has not exited within limit.
func (p *proc) term(limit time.Duration) error {
	p.signal(syscall.SIGCONT, false) // a paused child cannot handle SIGTERM
	if err := p.signal(syscall.SIGTERM, true); err != nil {
		return err
	}
	if err := p.wait(limit); err != nil {
		p.kill()
		return fmt.Errorf("%s did not stop within %s; killed", p.name, limit)
	}
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s stopped with %v (see %s)", p.name, err, p.log)
	}
	return nil
}

func (p *proc) wait(limit time.Duration) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("%s still running after %s", p.name, limit)
	}
}

// send writes a command line to the child's stdin.
func (p *proc) send(line string) error {
	p.mu.Lock()
	in := p.stdin
	p.mu.Unlock()
	if in == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	_, err := io.WriteString(in, line+"\n")
	return err
}

// running reports whether the current process has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// lastStatus returns the latest status fields and when they came.
func (p *proc) lastStatus() (map[string]string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.statusAt
}

func (p *proc) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// parseKV parses "k=v k2=v2".
func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// intField returns m[k] as an int64 (0 when absent).
func intField(m map[string]string, k string) int64 {
	v, _ := strconv.ParseInt(m[k], 10, 64)
	return v
}
