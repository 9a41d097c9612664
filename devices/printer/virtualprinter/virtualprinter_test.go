package virtualprinter_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
)

func stream(tb testing.TB) []byte {
	tb.Helper()
	b := escpos.NewBuilder(escpos.EncGBK).Init().CodePage(escpos.PC437).
		Align(escpos.AlignCenter).Size(2, 2).Line("SHOP").Size(1, 1).Align(escpos.AlignLeft).
		Bold(true).Line("bold").Bold(false).Underline(1).Line("under").Underline(0).
		ChineseOn().Line("中文 ¥1.00").ChineseOff().
		Code128("T1-000001", 60, 2, escpos.HRIBelow).
		Align(escpos.AlignCenter).QR("0190-id", 4, escpos.QRLevelM).QRRaster("0190-id", 3, escpos.QRLevelM).
		Feed(2).Cut(true)
	data, err := b.Bytes()
	require.NoError(tb, err)
	return data
}

func TestParseWholeAndByteByByteAgree(t *testing.T) {
	data := stream(t)
	jobs, unknown := virtualprinter.Parse(data)
	require.Len(t, jobs, 1)
	assert.Zero(t, unknown)
	j := jobs[0]
	assert.True(t, j.PartialCut)
	assert.Equal(t, data, j.Raw)
	text := j.Text(32)
	assert.Equal(t, "            S H O P\nbold\nunder\n中文 ￥1.00\n[CODE128 T1-000001]\n          [QR 0190-id]\n         [image 88x87]\n\n\n"+
		"================================\n", text)

	// The same stream in one-byte chunks, as a slow link delivers it.
	vp := virtualprinter.New()
	addr, err := vp.Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer vp.Close()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	changed := vp.Changed()
	for i := range data {
		_, err := c.Write(data[i : i+1])
		require.NoError(t, err)
	}
	waitChanged(t, changed)
	require.Len(t, vp.Jobs(), 1)
	assert.Equal(t, text, vp.Jobs()[0].Text(32))
}

func waitChanged(tb testing.TB, ch <-chan struct{}) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		tb.Fatal("no job recorded")
	}
}

// ask sends DLE EOT 1..4 and GS r 1 and returns the five answers.
func ask(tb testing.TB, c net.Conn) []byte {
	tb.Helper()
	var out []byte
	for _, req := range [][]byte{escpos.StatusRequest(1), escpos.StatusRequest(2), escpos.StatusRequest(3), escpos.StatusRequest(4), escpos.PaperSensorRequest()} {
		_, err := c.Write(req)
		require.NoError(tb, err)
		b := make([]byte, 1)
		require.NoError(tb, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.ReadFull(c, b)
		require.NoError(tb, err)
		out = append(out, b[0])
	}
	return out
}

func TestStatusAnswers(t *testing.T) {
	vp := virtualprinter.New()
	addr, err := vp.Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer vp.Close()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()

	assert.Equal(t, []byte{0x12, 0x12, 0x12, 0x12, 0x00}, ask(t, c), "healthy")
	vp.SetPaperOut(true)
	assert.Equal(t, []byte{0x1A, 0x32, 0x12, 0x7E, 0x0F}, ask(t, c), "the 1A 32 7E of a printer without paper")
	vp.SetPaperOut(false)
	vp.SetPaperNearEnd(true)
	assert.Equal(t, []byte{0x12, 0x12, 0x12, 0x1E, 0x03}, ask(t, c))
	vp.SetPaperNearEnd(false)
	vp.SetCoverOpen(true)
	assert.Equal(t, []byte{0x1A, 0x16, 0x12, 0x12, 0x00}, ask(t, c))
	vp.SetCoverOpen(false)
	vp.SetOffline(true)
	assert.Equal(t, []byte{0x1A, 0x12, 0x12, 0x12, 0x00}, ask(t, c))
	vp.SetOffline(false)
	for _, b := range ask(t, c)[:4] {
		assert.True(t, escpos.ValidStatusByte(b))
	}

	vp.SetReplyGarbage([]byte{0xFF})
	_, err = c.Write(escpos.StatusRequest(1))
	require.NoError(t, err)
	got := make([]byte, 2)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, []byte{0xFF, 0x12}, got, "garbage, then the answer")
	vp.SetReplyGarbage(nil)

	vp.SetSilent(true)
	_, err = c.Write(escpos.StatusRequest(1))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = c.Read(got)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a silent printer answers nothing")
	assert.Equal(t, 26, vp.StatusRequests())
	assert.Equal(t, 6, vp.BufferedRequests())
	assert.Zero(t, vp.JobBytes(), "requests are not job data")
}

func TestDropAfterAndPaperOutAfter(t *testing.T) {
	data := stream(t)
	vp := virtualprinter.New()
	addr, err := vp.Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer vp.Close()

	vp.DropAfter(40)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	changed := vp.Changed()
	_, _ = c.Write(data) // may fail once the printer hangs up
	waitChanged(t, changed)
	c.Close()
	require.Len(t, vp.Partials(), 1)
	assert.Equal(t, "connection dropped", vp.Partials()[0].Interrupted)
	assert.Less(t, len(vp.Partials()[0].Raw), len(data))
	assert.Empty(t, vp.Jobs())

	vp.PaperOutAfter(20)
	c, err = net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	changed = vp.Changed()
	_, err = c.Write(data)
	require.NoError(t, err)
	waitChanged(t, changed)
	require.Len(t, vp.Partials(), 2)
	assert.Equal(t, "paper out", vp.Partials()[1].Interrupted)
	assert.Empty(t, vp.Jobs(), "nothing prints without paper")
	assert.Equal(t, []byte{0x1A, 0x32, 0x12, 0x7E, 0x0F}, ask(t, c))

	vp.SetPaperOut(false)
	changed = vp.Changed()
	_, err = c.Write(data)
	require.NoError(t, err)
	waitChanged(t, changed)
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, 2, vp.Accepted())
	assert.Equal(t, 1, vp.MaxConcurrentConns())
}

func TestDrawerKickOutsideAJob(t *testing.T) {
	data, err := escpos.NewBuilder(escpos.EncASCII).KickDrawer(escpos.DrawerPin2, 100, 200).Raw(escpos.DLE, 0x14, 1, 0, 1).Bytes()
	require.NoError(t, err)
	jobs, unknown := virtualprinter.Parse(data)
	assert.Empty(t, jobs, "a kick is no receipt")
	assert.Zero(t, unknown)
	vp := virtualprinter.New()
	var rw bytes.Buffer
	rw.Write(data)
	require.ErrorIs(t, vp.Serve(context.Background(), &rw), io.EOF)
	assert.Equal(t, 2, vp.DrawerKicks())
	assert.Empty(t, vp.Partials())
}

func TestUnknownBytesAreCounted(t *testing.T) {
	jobs, unknown := virtualprinter.Parse([]byte("\x1b@ok\x01\x1bZ\x1d\xffx\n\x1dV\x00"))
	require.Len(t, jobs, 1)
	assert.Equal(t, 3, unknown, "0x01, the ESC of ESC Z, the GS of GS 0xFF")
	assert.Equal(t, "okZ\xc2\xa0x\n", jobs[0].Text(32)[:len("okZ\xc2\xa0x\n")])
	// An absurd raster header is not waited for.
	jobs, unknown = virtualprinter.Parse([]byte("\x1dv0\x00\xff\xff\xff\xff" + "\x1dV\x00"))
	require.Len(t, jobs, 1)
	assert.Positive(t, unknown)
}

// TestPNG renders a job and, when EDGEPOS_SCREENSHOT_DIR is set, keeps it.
func TestPNG(t *testing.T) {
	jobs, _ := virtualprinter.Parse(stream(t))
	img, err := jobs[0].PNG(384)
	require.NoError(t, err)
	m, err := png.Decode(bytes.NewReader(img))
	require.NoError(t, err)
	assert.Equal(t, 384, m.Bounds().Dx())
	assert.Greater(t, m.Bounds().Dy(), 300)
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "job.png"), img, 0o644))
}

// FuzzParse: any byte stream parses without panicking, and a stream fed
// in two chunks parses like the whole.
func FuzzParse(f *testing.F) {
	f.Add([]byte("\x1b@hello\n\x1dV\x00"), 3)
	f.Add([]byte("\x1c&\xd6\xd0\x1c.\x1dV\x01"), 1)
	f.Add([]byte("\x1d(k\x05\x001P0ab\x1d(k\x03\x001Q0\x1dVA\x03"), 7)
	f.Add([]byte("\x1dv0\x00\x01\x00\x02\x00\xff\x00\x1dV\x00"), 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		whole, u1 := virtualprinter.Parse(data)
		if cut < 0 || cut > len(data) {
			return
		}
		vp := virtualprinter.New()
		var rw bytes.Buffer
		rw.Write(data[:cut])
		_ = vp.Serve(context.Background(), &chunks{parts: [][]byte{data[:cut], data[cut:]}})
		got := vp.Jobs()
		if len(got) > len(whole) {
			t.Fatalf("chunked parse found %d jobs, whole %d", len(got), len(whole))
		}
		for i := range got {
			if !bytes.Equal(got[i].Raw, whole[i].Raw) {
				t.Fatalf("job %d differs when chunked", i)
			}
		}
		if vp.Unknown() > u1+len(data) {
			t.Fatal("unknown count out of bounds")
		}
	})
}

// chunks is a reader that returns its parts one Read at a time.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

func (c *chunks) Write(p []byte) (int, error) { return len(p), nil }
