package virtualprinter

import (
	"strings"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/edgepos/edgepos/devices/printer/escpos"
)

// ItemKind is what one printed item is.
type ItemKind string

// The item kinds.
const (
	ItemText    ItemKind = "text"
	ItemImage   ItemKind = "image"
	ItemQR      ItemKind = "qr"
	ItemBarcode ItemKind = "barcode"
	ItemFeed    ItemKind = "feed"
)

// Span is a run of text with one style.
type Span struct {
	Text string
	// Wide marks text printed with 24-dot CJK glyphs (Chinese mode).
	Wide      bool
	Bold      bool
	Underline int
	// W and H are the GS ! magnification (1..8).
	W, H int
}

// Item is one printed line or picture of a job.
type Item struct {
	Kind  ItemKind
	Align escpos.Align
	// Spans is the text of an ItemText line.
	Spans []Span
	// Bitmap is an ItemImage (raster, bands joined) or a rendered ItemQR.
	Bitmap escpos.Bitmap
	// Data is the content of an ItemQR or ItemBarcode.
	Data string
	// BarHeight and BarWidth size an ItemBarcode (GS h, GS w).
	BarHeight, BarWidth int
	// Dots is the paper advance of an ItemFeed.
	Dots int
}

// Job is one receipt: everything between two cuts.
type Job struct {
	Items []Item
	// Raw is the job's bytes as received (real-time requests and drawer
	// kicks sent between jobs excluded).
	Raw []byte
	// PartialCut is the cut that ended the job.
	PartialCut bool
	// Drawer counts drawer kicks inside the job.
	Drawer int
	// Interrupted says why the job did not come out whole: "paper out"
	// (the paper ran out during it) or "connection dropped" (the session
	// ended before the cut). Complete jobs have "".
	Interrupted string
}

// request is a status request the printer must answer, in stream order.
type request struct {
	realtime bool // DLE EOT n; else GS r n
	n        byte
}

// Limits that keep garbage input from making the parser wait for (and
// buffer) absurd amounts of data.
const (
	maxPending    = 1 << 20 // an incomplete command this long is given up
	maxRaster     = 1 << 20 // bytes of one GS v 0 band
	maxNULBarcode = 255     // data of a NUL-terminated GS k barcode
)

// escArgs is how many argument bytes each ESC command the parser knows takes.
var escArgs = map[byte]int{'@': 0, 'E': 1, '-': 1, 'a': 1, 'd': 1, 'J': 1, 't': 1, '!': 1, 'p': 3, 'M': 1, 'G': 1, '2': 0, '3': 1, 'c': 2}

// parser is an ESC/POS interpreter for the commands escpos.Builder emits
// (DEVICE-PROTOCOLS.md §1) and a few more. It is fed arbitrary chunks of
// a stream; bytes it does not understand are counted and skipped.
type parser struct {
	pending []byte // bytes of an incomplete command

	// print modes
	bold      bool
	underline int
	align     escpos.Align
	w, h      int
	chinese   bool
	page      *charmap.Charmap
	barH      int
	barW      int
	qrModule  int
	qrLevel   escpos.QRLevel
	qrData    string

	// noPaper drops what would be printed (the printer is out of paper)
	// and marks the job interrupted.
	noPaper bool

	line    []Span
	lineAl  escpos.Align
	cur     Job
	jobs    []Job // complete jobs
	partial []Job // interrupted jobs
	unknown int
	drawer  int
	reqs    []request
	// jobBytes counts every byte that is not a real-time request.
	jobBytes int
}

func newParser() *parser {
	p := &parser{}
	p.reset()
	return p
}

// reset is ESC @ (and power on).
func (p *parser) reset() {
	p.bold, p.underline, p.align, p.w, p.h = false, 0, escpos.AlignLeft, 1, 1
	p.chinese = false
	p.page = charmap.CodePage437
	p.barH, p.barW = 162, 3
	p.qrModule, p.qrLevel = 3, escpos.QRLevelL
}

// feed consumes b and returns the status requests it completed, in order.
func (p *parser) feed(b []byte) []request {
	p.pending = append(p.pending, b...)
	p.reqs = p.reqs[:0]
	for len(p.pending) > 0 {
		n := p.step(p.pending)
		if n == 0 {
			if len(p.pending) > maxPending {
				p.unknown++
				p.pending = p.pending[1:] // give up on this "command"
				continue
			}
			break // incomplete command: wait for more bytes
		}
		p.pending = p.pending[n:]
	}
	if len(p.pending) == 0 {
		p.pending = nil
	}
	return append([]request(nil), p.reqs...)
}

// need returns whether buf holds n bytes.
func need(buf []byte, n int) bool { return len(buf) >= n }

// step interprets one command or text byte run at the head of buf and
// returns how many bytes it used (0 = incomplete).
func (p *parser) step(buf []byte) int {
	c := buf[0]
	switch c {
	case escpos.DLE:
		if !need(buf, 3) {
			return 0
		}
		switch buf[1] {
		case escpos.EOT: // DLE EOT n: real-time status
			p.reqs = append(p.reqs, request{realtime: true, n: buf[2]})
			return 3
		case 0x14: // DLE DC4 fn m t: real-time drawer pulse
			if !need(buf, 5) {
				return 0
			}
			p.kick(buf[:5])
			return 5
		}
		p.bad(buf[:1])
		return 1
	case escpos.LF:
		p.raw(buf[:1])
		p.endLine(true)
		return 1
	case '\r': // CR: ignored by most printers when LF follows
		p.raw(buf[:1])
		return 1
	case escpos.ESC:
		return p.esc(buf)
	case escpos.GS:
		return p.gs(buf)
	case escpos.FS:
		if !need(buf, 2) {
			return 0
		}
		switch buf[1] {
		case '&':
			p.raw(buf[:2])
			p.chinese = true
		case '.':
			p.raw(buf[:2])
			p.chinese = false
		default:
			p.bad(buf[:1])
			return 1
		}
		return 2
	}
	if c < 0x20 || c == 0x7F {
		p.bad(buf[:1])
		return 1
	}
	return p.text(buf)
}

func (p *parser) raw(b []byte) {
	p.cur.Raw = append(p.cur.Raw, b...)
	p.jobBytes += len(b)
}

// bad counts and skips bytes that are not a command the parser knows.
func (p *parser) bad(b []byte) {
	p.unknown += len(b)
	p.raw(b)
}

// kick is a drawer pulse: part of the job when one is under way, else
// outside any job.
func (p *parser) kick(b []byte) {
	p.drawer++
	if len(p.cur.Raw) > 0 || len(p.cur.Items) > 0 {
		p.raw(b)
		p.cur.Drawer++
		return
	}
	p.jobBytes += len(b)
}

func (p *parser) esc(buf []byte) int {
	if !need(buf, 2) {
		return 0
	}
	n, ok := escArgs[buf[1]]
	if !ok {
		p.bad(buf[:1])
		return 1
	}
	if !need(buf, 2+n) {
		return 0
	}
	a := buf[2 : 2+n]
	if buf[1] == 'p' {
		p.kick(buf[:2+n])
		return 2 + n
	}
	p.raw(buf[:2+n])
	switch buf[1] {
	case '@':
		p.endLine(false)
		p.reset()
	case 'E':
		p.bold = a[0]&1 == 1
	case '-':
		p.underline = int(a[0] % 3)
	case 'a':
		p.align = escpos.Align(a[0] % 3)
	case 'd': // print the buffer, feed n lines
		p.endLine(false)
		p.addItem(Item{Kind: ItemFeed, Dots: int(a[0]) * lineDots})
	case 'J':
		p.endLine(false)
		p.addItem(Item{Kind: ItemFeed, Dots: int(a[0])})
	case 't':
		switch escpos.CodePage(a[0]) {
		case escpos.PC850:
			p.page = charmap.CodePage850
		case escpos.WPC1252:
			p.page = charmap.Windows1252
		case escpos.PC866:
			p.page = charmap.CodePage866
		case escpos.PC858:
			p.page = charmap.CodePage858
		case escpos.PC437:
			p.page = charmap.CodePage437
		default:
			p.unknown++ // a table we cannot show: keep the last one
		}
	case '!':
		p.bold = a[0]&0x08 != 0
		p.w, p.h = 1+int(a[0]>>5&1), 1+int(a[0]>>4&1)
	}
	return 2 + n
}

func (p *parser) gs(buf []byte) int {
	if !need(buf, 2) {
		return 0
	}
	switch buf[1] {
	case '!', 'h', 'w', 'H', 'a', 'r':
		if !need(buf, 3) {
			return 0
		}
		v := buf[2]
		if buf[1] == 'r' { // GS r n: buffered status, answered in order
			p.reqs = append(p.reqs, request{n: v})
			return 3
		}
		p.raw(buf[:3])
		switch buf[1] {
		case '!':
			p.w, p.h = 1+int(v>>4&7), 1+int(v&7)
		case 'h':
			p.barH = int(v)
		case 'w':
			p.barW = int(v)
		}
		return 3
	case 'V': // GS V m [n]: cut
		if !need(buf, 3) {
			return 0
		}
		n := 3
		if buf[2] == 65 || buf[2] == 66 {
			if !need(buf, 4) {
				return 0
			}
			n = 4
		}
		p.raw(buf[:n])
		p.endLine(false)
		p.cur.PartialCut = buf[2] == 1 || buf[2] == 49 || buf[2] == 66
		p.finish("")
		return n
	case 'k': // GS k m …: barcode
		if !need(buf, 3) {
			return 0
		}
		m := buf[2]
		if m <= 6 { // NUL-terminated form
			i := 3
			for i < len(buf) && buf[i] != 0 && i-3 <= maxNULBarcode {
				i++
			}
			if i-3 > maxNULBarcode {
				p.bad(buf[:1])
				return 1
			}
			if i >= len(buf) {
				return 0
			}
			p.raw(buf[:i+1])
			p.barcode(string(buf[3:i]))
			return i + 1
		}
		if !need(buf, 4) || !need(buf, 4+int(buf[3])) {
			return 0
		}
		n := 4 + int(buf[3])
		p.raw(buf[:n])
		data := string(buf[4:n])
		if m == 73 && len(data) >= 2 && data[0] == '{' {
			data = data[2:] // code set selector {A {B {C
		}
		p.barcode(data)
		return n
	case '(': // GS ( fn pL pH …
		if !need(buf, 5) {
			return 0
		}
		n := 5 + int(buf[3]) + int(buf[4])<<8
		if !need(buf, n) {
			return 0
		}
		p.raw(buf[:n])
		if buf[2] == 'k' && n >= 7 && buf[5] == 49 {
			p.qr(buf[6], buf[7:n])
		} else {
			p.unknown++
		}
		return n
	case 'v': // GS v 0 m xL xH yL yH d…
		if !need(buf, 8) {
			return 0
		}
		x := int(buf[4]) | int(buf[5])<<8
		y := int(buf[6]) | int(buf[7])<<8
		if buf[2] != '0' || x == 0 || y == 0 || x*y > maxRaster {
			p.bad(buf[:1])
			return 1
		}
		n := 8 + x*y
		if !need(buf, n) {
			return 0
		}
		p.raw(buf[:n])
		p.endLine(false)
		bm := escpos.Bitmap{Width: x * 8, Height: y, BytesPerRow: x, Bits: append([]byte(nil), buf[8:n]...)}
		// consecutive bands of one image are joined
		if k := len(p.cur.Items); k > 0 && !p.noPaper && p.cur.Items[k-1].Kind == ItemImage && p.cur.Items[k-1].Bitmap.BytesPerRow == x && p.cur.Items[k-1].Align == p.align {
			last := &p.cur.Items[k-1].Bitmap
			last.Bits = append(last.Bits, bm.Bits...)
			last.Height += y
			return n
		}
		p.addItem(Item{Kind: ItemImage, Align: p.align, Bitmap: bm})
		return n
	}
	p.bad(buf[:1])
	return 1
}

// addItem puts an item on paper, unless there is no paper.
func (p *parser) addItem(it Item) {
	if p.noPaper {
		if p.cur.Interrupted == "" {
			p.cur.Interrupted = "paper out"
		}
		return
	}
	p.cur.Items = append(p.cur.Items, it)
}

// finish ends the current job (a cut, or the session's end with why).
func (p *parser) finish(why string) {
	if why != "" && p.cur.Interrupted == "" {
		p.cur.Interrupted = why
	}
	if p.cur.Interrupted != "" {
		p.partial = append(p.partial, p.cur)
	} else {
		p.jobs = append(p.jobs, p.cur)
	}
	p.cur = Job{}
}

// qr handles GS ( k cn=49 function fn (DEVICE-PROTOCOLS.md §1, QR row).
func (p *parser) qr(fn byte, args []byte) {
	switch fn {
	case 65: // fn 165 model
	case 67: // fn 167 module size
		if len(args) > 0 {
			p.qrModule = int(args[0])
		}
	case 69: // fn 169 error correction 48..51
		if len(args) > 0 && args[0] >= 48 && args[0] <= 51 {
			p.qrLevel = escpos.QRLevel(args[0] - 48)
		}
	case 80: // fn 180 store
		if len(args) > 0 {
			p.qrData = string(args[1:])
		}
	case 81: // fn 181 print
		p.endLine(false)
		it := Item{Kind: ItemQR, Align: p.align, Data: p.qrData}
		if bm, err := escpos.QRBitmap(p.qrData, min(16, max(1, p.qrModule)), p.qrLevel); err == nil {
			it.Bitmap = bm
		}
		p.addItem(it)
	default:
		p.unknown++
	}
}

func (p *parser) barcode(data string) {
	p.endLine(false)
	p.addItem(Item{Kind: ItemBarcode, Align: p.align, Data: data, BarHeight: p.barH, BarWidth: p.barW})
}

// text decodes a run of printable bytes in the current mode. In Chinese
// mode a byte ≥ 0x81 starts a 2-byte GBK character (4 bytes for a GB18030
// sequence whose second byte is a digit); runs of wide and narrow
// characters become separate spans.
func (p *parser) text(buf []byte) int {
	i := 0
	var s string
	wide := false
	if p.chinese {
		dec := simplifiedchinese.GB18030.NewDecoder()
		if buf[0] < 0x80 {
			for i < len(buf) && buf[i] >= 0x20 && buf[i] < 0x7F {
				i++
			}
			s = string(buf[:i])
		} else {
			var sb strings.Builder
			for i < len(buf) && buf[i] >= 0x80 {
				n := 2
				if i+1 < len(buf) && buf[i+1] >= 0x30 && buf[i+1] <= 0x39 {
					n = 4 // GB18030 four-byte sequence
				}
				if i+n > len(buf) {
					if i == 0 {
						return 0 // wait for the rest of the character
					}
					break
				}
				r, err := dec.String(string(buf[i : i+n]))
				if err != nil || r == "" {
					r = "\uFFFD"
				}
				sb.WriteString(r)
				i += n
			}
			s, wide = sb.String(), true
		}
	} else {
		for i < len(buf) && buf[i] >= 0x20 && buf[i] != 0x7F {
			i++
		}
		s, _ = p.page.NewDecoder().String(string(buf[:i]))
	}
	p.raw(buf[:i])
	if p.noPaper {
		if p.cur.Interrupted == "" {
			p.cur.Interrupted = "paper out"
		}
		return i
	}
	if len(p.line) == 0 {
		p.lineAl = p.align
	}
	p.line = append(p.line, Span{Text: s, Wide: wide, Bold: p.bold, Underline: p.underline, W: p.w, H: p.h})
	return i
}

// endLine finishes the current text line; an empty line is kept only when
// forced by LF (a blank line on paper).
func (p *parser) endLine(lf bool) {
	if len(p.line) == 0 {
		if lf {
			p.addItem(Item{Kind: ItemText, Align: p.align})
		}
		return
	}
	p.addItem(Item{Kind: ItemText, Align: p.lineAl, Spans: p.line})
	p.line = nil
}

// lineDots is the default line spacing (ESC 2: 1/6 inch ≈ 30 dots at 180/203 dpi).
const lineDots = 30
