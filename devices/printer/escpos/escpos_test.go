package escpos

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommands(t *testing.T) {
	cases := []struct {
		name string
		do   func(*Builder)
		want []byte
	}{
		{"init", func(b *Builder) { b.Init() }, []byte{0x1B, 0x40}},
		{"bold", func(b *Builder) { b.Bold(true).Bold(false) }, []byte{0x1B, 0x45, 1, 0x1B, 0x45, 0}},
		{"underline", func(b *Builder) { b.Underline(2) }, []byte{0x1B, 0x2D, 2}},
		{"align", func(b *Builder) { b.Align(AlignCenter) }, []byte{0x1B, 0x61, 1}},
		{"size 2x2", func(b *Builder) { b.Size(2, 2) }, []byte{0x1D, 0x21, 0x11}},
		{"size 1x3", func(b *Builder) { b.Size(1, 3) }, []byte{0x1D, 0x21, 0x02}},
		{"feed", func(b *Builder) { b.Feed(3).FeedDots(24) }, []byte{0x1B, 0x64, 3, 0x1B, 0x4A, 24}},
		{"cut", func(b *Builder) { b.Cut(false).Cut(true) }, []byte{0x1D, 0x56, 0, 0x1D, 0x56, 1}},
		{"feed cut", func(b *Builder) { b.FeedCut(10, true) }, []byte{0x1D, 0x56, 0x42, 10}},
		{"drawer", func(b *Builder) { b.KickDrawer(DrawerPin2, 100, 200) }, []byte{0x1B, 0x70, 0, 50, 100}},
		{"code page", func(b *Builder) { b.CodePage(PC858) }, []byte{0x1B, 0x74, 19}},
		{"code128", func(b *Builder) { b.Code128("T1-1", 60, 2, HRIBelow) }, []byte{0x1D, 0x68, 60, 0x1D, 0x77, 2, 0x1D, 0x48, 2, 0x1D, 0x6B, 73, 6, '{', 'B', 'T', '1', '-', '1'}},
		{"qr", func(b *Builder) { b.QR("AB", 6, QRLevelM) }, []byte{
			0x1D, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0,
			0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, 6,
			0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 0x31,
			0x1D, 0x28, 0x6B, 5, 0, 0x31, 0x50, 0x30, 'A', 'B',
			0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30}},
		{"text pc437", func(b *Builder) { b.Line("é\x1b!") }, []byte{0x82, '?', '!', 0x0A}},
		{"chinese", func(b *Builder) { b.ChineseOn().Text("中¥").ChineseOff() }, []byte{0x1C, 0x26, 0xD6, 0xD0, 0xA3, 0xA4, 0x1C, 0x2E}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(EncGBK)
			c.do(b)
			got, err := b.Bytes()
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestUnknownCodePageIsRefused(t *testing.T) {
	b := NewBuilder(EncASCII).Init().CodePage(CodePage(99)).Line("x")
	_, err := b.Bytes()
	require.ErrorIs(t, err, ErrUnknownCodePage)
	assert.Contains(t, err.Error(), "ESC t 99")

	b = NewBuilder(EncGBK).ChineseOn().CodePage(PC437)
	require.ErrorIs(t, b.Err(), ErrBadArgument, "no code page switching inside Chinese mode")
}

func TestBadArguments(t *testing.T) {
	for name, f := range map[string]func(*Builder){
		"size":             func(b *Builder) { b.Size(9, 1) },
		"underline":        func(b *Builder) { b.Underline(3) },
		"drawer":           func(b *Builder) { b.KickDrawer(DrawerPin5, 0, 10) },
		"code128 cjk":      func(b *Builder) { b.Code128("中", 50, 2, HRINone) },
		"code128 empty":    func(b *Builder) { b.Code128("", 50, 2, HRINone) },
		"qr module":        func(b *Builder) { b.QR("x", 17, QRLevelL) },
		"chinese on ascii": func(b *Builder) { b.ChineseOn() },
	} {
		t.Run(name, func(t *testing.T) {
			b := NewBuilder(EncASCII)
			f(b)
			require.ErrorIs(t, b.Err(), ErrBadArgument)
		})
	}
	_, err := ParseEncoding("utf8")
	require.ErrorIs(t, err, ErrUnknownEncoding)
}

func TestUnencodableCharactersAreReplacedAndCounted(t *testing.T) {
	b := NewBuilder(EncGBK).ChineseOn().Text("茶😀한€x")
	got, err := b.Bytes()
	require.NoError(t, err)
	// 茶 = B2 E8; emoji and Hangul are not in GBK; € is GBK 80 in x/text's
	// table (a single byte a 2-byte printer may not know) — counted too.
	assert.Equal(t, []byte{0x1C, 0x26, 0xB2, 0xE8}, got[:4])
	assert.Equal(t, byte('x'), got[len(got)-1])
	assert.GreaterOrEqual(t, b.Replaced(), 2)
	assert.Equal(t, b.Replaced(), bytes.Count(got, []byte("?")))

	b = NewBuilder(EncGB18030).ChineseOn().Text("😀¥")
	got, _ = b.Bytes()
	assert.Zero(t, b.Replaced(), "GB18030 covers all of Unicode")
	assert.Equal(t, []byte{0xA3, 0xA4}, got[len(got)-2:], "¥ still goes out as fullwidth ￥")

	b = NewBuilder(EncASCII).Text("中")
	assert.Equal(t, 1, b.Replaced())
}

func TestRasterBands(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 20, 600))
	for y := 0; y < 600; y++ {
		img.SetGray(0, y, color.Gray{Y: 0})    // black
		img.SetGray(19, y, color.Gray{Y: 255}) // white
		for x := 1; x < 19; x++ {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	b := NewBuilder(EncASCII).Image(img)
	got, err := b.Bytes()
	require.NoError(t, err)
	// 3 bytes per row; bands of 256, 256 and 88 rows
	require.Equal(t, 3*8+3*600, len(got))
	hdr := func(off, rows int) {
		assert.Equal(t, []byte{0x1D, 0x76, 0x30, 0, 3, 0, byte(rows), byte(rows >> 8)}, got[off:off+8])
	}
	hdr(0, 256)
	hdr(8+3*256, 256)
	hdr(16+3*512, 88)
	assert.Equal(t, byte(0x80), got[8], "leftmost dot black, MSB first")
	assert.Equal(t, byte(0x00), got[9])
}

func TestThresholdAlpha(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.Set(0, 0, color.NRGBA{0, 0, 0, 255}) // opaque black
	img.Set(1, 0, color.NRGBA{0, 0, 0, 0})   // transparent: paper
	bm := Threshold(img)
	assert.True(t, bm.Black(0, 0))
	assert.False(t, bm.Black(1, 0))
}

func TestQRBitmap(t *testing.T) {
	bm, err := QRBitmap("0190b5a2-7c4e-7f00-8000-000000000001", 4, QRLevelM)
	require.NoError(t, err)
	assert.Equal(t, bm.Width, bm.Height)
	assert.True(t, bm.Black(4*4, 4*4), "top-left finder pattern starts after the quiet zone")
	assert.False(t, bm.Black(0, 0), "quiet zone")
}

func TestParseStatus(t *testing.T) {
	s, err := ParseStatus([]byte{0x12, 0x12, 0x12, 0x12})
	require.NoError(t, err)
	assert.True(t, s.Healthy())
	assert.Equal(t, "", s.Problems())

	// A printer with no paper answers 1A 32 7E to n = 1, 2 and 4.
	s = Status{}
	require.NoError(t, s.Apply(1, 0x1A))
	require.NoError(t, s.Apply(2, 0x32))
	require.NoError(t, s.Apply(4, 0x7E))
	assert.True(t, s.Offline)
	assert.True(t, s.PaperEndStop)
	assert.True(t, s.PaperEnd)
	assert.True(t, s.PaperNearEnd)
	assert.False(t, s.Healthy())
	assert.Equal(t, "paper end", s.Problems())

	s, err = ParseStatus([]byte{0x1A, 0x16, 0x12, 0x12})
	require.NoError(t, err)
	assert.True(t, s.CoverOpen)
	assert.Equal(t, "cover open", s.Problems())

	s, err = ParseStatus([]byte{0x12, 0x12, 0x1A, 0x1E})
	require.NoError(t, err)
	assert.True(t, s.CutterError)
	assert.True(t, s.PaperNearEnd)
	assert.False(t, s.PaperEnd)

	_, err = ParseStatus([]byte{0x00})
	require.ErrorIs(t, err, ErrBadStatus)
	_, err = ParseStatus([]byte{0x12, 0x12, 0x12, 0x12, 0x12})
	require.ErrorIs(t, err, ErrBadStatus)
	assert.Equal(t, []byte{0x10, 0x04, 0x02}, StatusRequest(2))
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte{0x12, 0x12, 0x12, 0x12})
	f.Add([]byte{0x1A, 0x32, 0x12, 0x7E})
	f.Add([]byte{0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err != nil {
			if s != (Status{}) {
				t.Fatalf("error with a non-zero status: %+v", s)
			}
			return
		}
		if len(b) > 4 {
			t.Fatal("more than 4 bytes accepted")
		}
		for _, v := range b {
			if !ValidStatusByte(v) {
				t.Fatalf("byte %#x accepted", v)
			}
		}
		if s.Healthy() != (s.Problems() == "") {
			t.Fatalf("Healthy and Problems disagree: %+v", s)
		}
	})
}
