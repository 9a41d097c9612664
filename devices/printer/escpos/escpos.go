// Package escpos builds ESC/POS command streams for receipt printers and
// parses their real-time status replies (DLE EOT). It does no I/O.
//
// A Builder appends commands to a byte buffer. Errors (an unknown code
// page, a barcode with characters its code set cannot carry, a size out of
// range) are sticky: the first one is kept and returned by Bytes, so a
// layout can chain calls and check once. Command bytes follow the table in
// DEVICE-PROTOCOLS.md §1; each method cites its command.
package escpos

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Sentinel errors of the package.
var (
	// ErrUnknownCodePage is wrapped when a code page number is not one we
	// know the character table of.
	ErrUnknownCodePage = errors.New("unknown code page")
	// ErrBadArgument is wrapped when a command argument is out of range.
	ErrBadArgument = errors.New("bad ESC/POS argument")
	// ErrBadStatus is wrapped when a status byte does not have the fixed
	// bits of a DLE EOT reply.
	ErrBadStatus = errors.New("bad status byte")
	// ErrUnknownEncoding is wrapped for an unknown text encoding name.
	ErrUnknownEncoding = errors.New("unknown text encoding")
)

// Control bytes.
const (
	ESC = 0x1B
	GS  = 0x1D
	FS  = 0x1C
	DLE = 0x10
	EOT = 0x04
	LF  = 0x0A
)

// Align is a justification for ESC a.
type Align byte

// The justifications.
const (
	AlignLeft   Align = 0
	AlignCenter Align = 1
	AlignRight  Align = 2
)

// CodePage is an ESC t character table number. Numbering varies by vendor;
// these are the Epson numbers (DEVICE-PROTOCOLS.md §1).
type CodePage byte

// The code pages the builder knows the character tables of.
const (
	PC437   CodePage = 0
	PC850   CodePage = 2
	WPC1252 CodePage = 16
	PC866   CodePage = 17
	PC858   CodePage = 19
)

var codePages = map[CodePage]*charmap.Charmap{
	PC437:   charmap.CodePage437,
	PC850:   charmap.CodePage850,
	WPC1252: charmap.Windows1252,
	PC866:   charmap.CodePage866,
	PC858:   charmap.CodePage858,
}

// Known reports whether the builder knows the character table of cp
// (CodePage refuses the others with ErrUnknownCodePage).
func (cp CodePage) Known() bool {
	_, ok := codePages[cp]
	return ok
}

// Encoding names a printer's text encoding.
type Encoding string

// The encodings a printer can be configured with.
const (
	// EncASCII is a single-byte printer using a code page (default PC437).
	EncASCII Encoding = "ascii"
	// EncGBK is a Chinese printer with 2-byte GBK only (the common case:
	// many print nothing sensible for GB18030 4-byte sequences).
	EncGBK Encoding = "gbk"
	// EncGB18030 is a Chinese printer that accepts all of GB18030.
	EncGB18030 Encoding = "gb18030"
)

// ParseEncoding checks an encoding name from configuration.
func ParseEncoding(s string) (Encoding, error) {
	switch e := Encoding(strings.ToLower(s)); e {
	case EncASCII, EncGBK, EncGB18030:
		return e, nil
	case "":
		return EncASCII, nil
	}
	return "", fmt.Errorf("%w: %q (want ascii, gbk or gb18030)", ErrUnknownEncoding, s)
}

// Chinese reports whether e is a Chinese (2-byte) encoding.
func (e Encoding) Chinese() bool { return e == EncGBK || e == EncGB18030 }

// Builder accumulates an ESC/POS byte stream. The zero value is not ready;
// use NewBuilder.
type Builder struct {
	buf      []byte
	err      error
	enc      Encoding
	chinese  bool
	page     CodePage
	replaced int
}

// NewBuilder returns an empty builder whose text encoding is enc. With a
// Chinese encoding, text is encoded as GBK/GB18030 while Chinese mode is
// on (ChineseOn) and with the code page otherwise.
func NewBuilder(enc Encoding) *Builder {
	b := &Builder{enc: enc}
	if _, err := ParseEncoding(string(enc)); err != nil {
		b.err = err
	}
	return b
}

// Bytes returns the stream built so far, or the first error.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

// Err returns the first error, if any.
func (b *Builder) Err() error { return b.err }

// Replaced returns how many characters Text could not encode and printed
// as '?'.
func (b *Builder) Replaced() int { return b.replaced }

// Len returns the number of bytes built so far.
func (b *Builder) Len() int { return len(b.buf) }

func (b *Builder) fail(err error) *Builder {
	if b.err == nil {
		b.err = err
	}
	return b
}

// Raw appends bytes as they are.
func (b *Builder) Raw(p ...byte) *Builder {
	b.buf = append(b.buf, p...)
	return b
}

// Init resets the printer: ESC @ (1B 40). It also leaves Chinese mode in
// the builder's bookkeeping, as the printer returns to its power-on mode;
// call ChineseOn again after it.
func (b *Builder) Init() *Builder {
	b.chinese = false
	b.page = PC437
	return b.Raw(ESC, '@')
}

// Bold turns emphasis on or off: ESC E n (1B 45 n).
func (b *Builder) Bold(on bool) *Builder { return b.Raw(ESC, 'E', bit(on)) }

// Underline sets underline thickness 0 (off), 1 or 2 dots: ESC - n (1B 2D n).
func (b *Builder) Underline(dots int) *Builder {
	if dots < 0 || dots > 2 {
		return b.fail(fmt.Errorf("%w: underline %d (want 0..2)", ErrBadArgument, dots))
	}
	return b.Raw(ESC, '-', byte(dots))
}

// Align sets justification: ESC a n (1B 61 n).
func (b *Builder) Align(a Align) *Builder {
	if a > AlignRight {
		return b.fail(fmt.Errorf("%w: align %d", ErrBadArgument, a))
	}
	return b.Raw(ESC, 'a', byte(a))
}

// Size sets character magnification, width and height 1..8: GS ! n
// (1D 21 n), high nibble width−1, low nibble height−1.
func (b *Builder) Size(width, height int) *Builder {
	if width < 1 || width > 8 || height < 1 || height > 8 {
		return b.fail(fmt.Errorf("%w: size %dx%d (want 1..8)", ErrBadArgument, width, height))
	}
	return b.Raw(GS, '!', byte((width-1)<<4|(height-1)))
}

// LF prints the line buffer and feeds one line (0A).
func (b *Builder) LF() *Builder { return b.Raw(LF) }

// Feed prints and feeds n lines: ESC d n (1B 64 n).
func (b *Builder) Feed(n int) *Builder {
	if n < 0 || n > 255 {
		return b.fail(fmt.Errorf("%w: feed %d lines", ErrBadArgument, n))
	}
	return b.Raw(ESC, 'd', byte(n))
}

// FeedDots prints and feeds n dots: ESC J n (1B 4A n).
func (b *Builder) FeedDots(n int) *Builder {
	if n < 0 || n > 255 {
		return b.fail(fmt.Errorf("%w: feed %d dots", ErrBadArgument, n))
	}
	return b.Raw(ESC, 'J', byte(n))
}

// Cut cuts the paper, fully or partially: GS V 0/1 (1D 56 00 / 01).
func (b *Builder) Cut(partial bool) *Builder { return b.Raw(GS, 'V', bit(partial)) }

// FeedCut feeds n dots then cuts: GS V 65/66 n (1D 56 41/42 n).
func (b *Builder) FeedCut(n int, partial bool) *Builder {
	if n < 0 || n > 255 {
		return b.fail(fmt.Errorf("%w: feed-cut %d dots", ErrBadArgument, n))
	}
	return b.Raw(GS, 'V', 0x41+bit(partial), byte(n))
}

// DrawerPin selects the drawer kick connector pin.
type DrawerPin byte

// The drawer pins.
const (
	DrawerPin2 DrawerPin = 0
	DrawerPin5 DrawerPin = 1
)

// KickDrawer pulses a drawer pin: ESC p m t1 t2 (1B 70 m t1 t2), on for
// t1×2 ms and off for t2×2 ms. onMS and offMS are rounded down to 2 ms
// steps and must be 2..510.
func (b *Builder) KickDrawer(pin DrawerPin, onMS, offMS int) *Builder {
	if pin > DrawerPin5 || onMS < 2 || onMS > 510 || offMS < 2 || offMS > 510 {
		return b.fail(fmt.Errorf("%w: drawer pin %d on %dms off %dms", ErrBadArgument, pin, onMS, offMS))
	}
	return b.Raw(ESC, 'p', byte(pin), byte(onMS/2), byte(offMS/2))
}

// CodePage selects a single-byte character table: ESC t n (1B 74 n).
// Unknown numbers are refused with ErrUnknownCodePage, and so is a code
// page change while Chinese mode is on (mixing the two misprints).
func (b *Builder) CodePage(cp CodePage) *Builder {
	if _, ok := codePages[cp]; !ok {
		return b.fail(fmt.Errorf("%w: ESC t %d (known: 0 PC437, 2 PC850, 16 WPC1252, 17 PC866, 19 PC858)", ErrUnknownCodePage, cp))
	}
	if b.chinese {
		return b.fail(fmt.Errorf("%w: code page change in Chinese mode", ErrBadArgument))
	}
	b.page = cp
	return b.Raw(ESC, 't', byte(cp))
}

// ChineseOn enters Chinese character mode: FS & (1C 26). Text is then
// encoded as GBK (or GB18030). It fails on a non-Chinese builder.
func (b *Builder) ChineseOn() *Builder {
	if !b.enc.Chinese() {
		return b.fail(fmt.Errorf("%w: Chinese mode on a %s printer", ErrBadArgument, b.enc))
	}
	b.chinese = true
	return b.Raw(FS, '&')
}

// ChineseOff leaves Chinese character mode: FS . (1C 2E).
func (b *Builder) ChineseOff() *Builder {
	b.chinese = false
	return b.Raw(FS, '.')
}

// Text appends s encoded for the printer's current mode; "\n" becomes LF.
// Characters the encoding cannot represent are printed as '?' and counted
// (Replaced). In Chinese mode U+00A5 YEN SIGN is sent as U+FFE5 FULLWIDTH
// YEN SIGN (GBK A3 A4): GBK has no ¥ and GB18030 makes it 4 bytes that
// 2-byte printers misprint (DEVICE-PROTOCOLS.md §1, "¥ prints as 0 6").
//
// We do not use encoding.ReplaceUnsupported: it substitutes the SUB byte
// 1A, which printers show as garbage, and does not say how many
// characters it replaced.
func (b *Builder) Text(s string) *Builder {
	var enc *encoding.Encoder
	switch {
	case b.chinese && b.enc == EncGB18030:
		enc = simplifiedchinese.GB18030.NewEncoder()
	case b.chinese:
		enc = simplifiedchinese.GBK.NewEncoder()
	default:
		enc = codePages[b.page].NewEncoder()
	}
	var tmp [8]byte
	for _, r := range s {
		switch {
		case r == '\n':
			b.buf = append(b.buf, LF)
			continue
		case r < 0x20 || r == 0x7F || r == utf8.RuneError:
			// control characters would be read as commands
			b.buf = append(b.buf, '?')
			b.replaced++
			continue
		case r < 0x7F:
			b.buf = append(b.buf, byte(r))
			continue
		case r == 0xA5 && b.chinese:
			r = 0xFFE5
		}
		n := utf8.EncodeRune(tmp[:], r)
		out, err := enc.Bytes(tmp[:n])
		if err != nil || len(out) == 0 || (b.chinese && b.enc == EncGBK && len(out) > 2) {
			b.buf = append(b.buf, '?')
			b.replaced++
			continue
		}
		b.buf = append(b.buf, out...)
	}
	return b
}

// Line appends Text(s) and LF.
func (b *Builder) Line(s string) *Builder { return b.Text(s).LF() }

// HRIPosition is where a barcode's human-readable text goes (GS H n).
type HRIPosition byte

// The HRI positions.
const (
	HRINone  HRIPosition = 0
	HRIAbove HRIPosition = 1
	HRIBelow HRIPosition = 2
	HRIBoth  HRIPosition = 3
)

// Code128 prints data as a CODE128 barcode in code set B: GS h n (height
// in dots), GS w n (module width 2..6), GS H n (HRI position), then
// GS k 73 n {B data (1D 6B 49 len 7B 42 …). Code set B carries 0x20..0x7E.
func (b *Builder) Code128(data string, height, width int, hri HRIPosition) *Builder {
	if data == "" || len(data) > 253 {
		return b.fail(fmt.Errorf("%w: CODE128 data length %d (want 1..253)", ErrBadArgument, len(data)))
	}
	for i := 0; i < len(data); i++ {
		if data[i] < 0x20 || data[i] > 0x7E {
			return b.fail(fmt.Errorf("%w: CODE128 set B cannot carry byte %#x", ErrBadArgument, data[i]))
		}
	}
	if height < 1 || height > 255 || width < 2 || width > 6 || hri > HRIBoth {
		return b.fail(fmt.Errorf("%w: CODE128 height %d width %d hri %d", ErrBadArgument, height, width, hri))
	}
	b.Raw(GS, 'h', byte(height), GS, 'w', byte(width), GS, 'H', byte(hri))
	b.Raw(GS, 'k', 73, byte(len(data)+2), '{', 'B')
	return b.Raw([]byte(data)...)
}

// QRLevel is a QR error correction level.
type QRLevel byte

// The QR error correction levels, in GS ( k fn 169 numbering (48..51).
const (
	QRLevelL QRLevel = 0
	QRLevelM QRLevel = 1
	QRLevelQ QRLevel = 2
	QRLevelH QRLevel = 3
)

// QR prints data as a native QR code: model 2 (GS ( k fn 165), module size
// 1..16 dots (fn 167), error correction (fn 169), store the data (fn 180),
// print it (fn 181). Printers without GS ( k print nothing (see QRRaster).
func (b *Builder) QR(data string, module int, level QRLevel) *Builder {
	if data == "" || len(data) > 7089 {
		return b.fail(fmt.Errorf("%w: QR data length %d (want 1..7089)", ErrBadArgument, len(data)))
	}
	if module < 1 || module > 16 || level > QRLevelH {
		return b.fail(fmt.Errorf("%w: QR module %d level %d", ErrBadArgument, module, level))
	}
	// GS ( k pL pH cn fn …, cn 49 = QR
	b.Raw(GS, '(', 'k', 4, 0, 49, 65, 50, 0)             // fn 165: model 2
	b.Raw(GS, '(', 'k', 3, 0, 49, 67, byte(module))      // fn 167: module size
	b.Raw(GS, '(', 'k', 3, 0, 49, 69, 48+byte(level))    // fn 169: error correction
	n := len(data) + 3                                   // pL + 256·pH = len + 3
	b.Raw(GS, '(', 'k', byte(n), byte(n>>8), 49, 80, 48) // fn 180: store
	b.Raw([]byte(data)...)
	return b.Raw(GS, '(', 'k', 3, 0, 49, 81, 48) // fn 181: print
}

func bit(on bool) byte {
	if on {
		return 1
	}
	return 0
}
