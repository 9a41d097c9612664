package virtualprinter

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"unicode/utf8"

	"github.com/boombuler/barcode/code128"
	"github.com/edgepos/edgepos/devices/printer/escpos"
)

// spanCols is the width of a span in Font A columns.
func spanCols(s Span) int {
	n := utf8.RuneCountInString(s.Text)
	if s.Wide {
		n *= 2
	}
	return n * max(1, s.W)
}

// Text renders the job as plain text, cols columns wide (32 for 58 mm, 48
// for 80 mm): alignment is applied, pictures become one-line placeholders
// such as "[QR 0190…]", a ruler of '=' marks the cut.
func (j Job) Text(cols int) string {
	var sb strings.Builder
	put := func(al escpos.Align, s string, w int) {
		pad := 0
		switch al {
		case escpos.AlignCenter:
			pad = max(0, (cols-w)/2)
		case escpos.AlignRight:
			pad = max(0, cols-w)
		}
		sb.WriteString(strings.TrimRight(strings.Repeat(" ", pad)+s, " "))
		sb.WriteByte('\n')
	}
	for _, it := range j.Items {
		switch it.Kind {
		case ItemText:
			var line strings.Builder
			w := 0
			for _, s := range it.Spans {
				t := s.Text
				if s.W > 1 { // double width: space the letters out
					pad := s.W - 1
					if s.Wide {
						pad *= 2
					}
					var sp strings.Builder
					for _, r := range t {
						sp.WriteRune(r)
						sp.WriteString(strings.Repeat(" ", pad))
					}
					t = sp.String()
				}
				line.WriteString(t)
				w += spanCols(s)
			}
			put(it.Align, line.String(), w)
		case ItemQR:
			s := "[QR " + it.Data + "]"
			put(it.Align, s, utf8.RuneCountInString(s))
		case ItemBarcode:
			s := "[CODE128 " + it.Data + "]"
			put(it.Align, s, utf8.RuneCountInString(s))
		case ItemImage:
			s := fmt.Sprintf("[image %dx%d]", it.Bitmap.Width, it.Bitmap.Height)
			put(it.Align, s, len(s))
		case ItemFeed:
			for range it.Dots / lineDots {
				sb.WriteByte('\n')
			}
		}
	}
	sb.WriteString(strings.Repeat("=", cols))
	sb.WriteByte('\n')
	return sb.String()
}

// canvas is a growing 1-bit paper roll.
type canvas struct {
	img  *image.Gray
	w, y int
}

func newCanvas(w int) *canvas {
	return &canvas{img: image.NewGray(image.Rect(0, 0, w, 0)), w: w}
}

// grow makes room for h more rows below y.
func (c *canvas) grow(h int) {
	need := c.y + h
	if need <= c.img.Rect.Dy() {
		return
	}
	n := image.NewGray(image.Rect(0, 0, c.w, need+256))
	for i := range n.Pix {
		n.Pix[i] = 0xFF
	}
	copy(n.Pix, c.img.Pix)
	c.img = n
}

func (c *canvas) dot(x, y int) {
	if x >= 0 && x < c.w && y >= 0 && y < c.img.Rect.Dy() {
		c.img.Pix[y*c.img.Stride+x] = 0
	}
}

func (c *canvas) rect(x, y, w, h int) {
	for dy := 0; dy < h; dy++ {
		for dx := 0; dx < w; dx++ {
			c.dot(x+dx, y+dy)
		}
	}
}

// left returns the x of a thing w dots wide under alignment al.
func (c *canvas) left(al escpos.Align, w int) int {
	switch al {
	case escpos.AlignCenter:
		return max(0, (c.w-w)/2)
	case escpos.AlignRight:
		return max(0, c.w-w)
	}
	return 0
}

// Font A cells are 12×24 dots; CJK cells 24×24 (DEVICE-PROTOCOLS.md §1,
// paper widths table). The 5×7 glyphs are drawn 2× wide and 3× tall.
const cellW, cellH = 12, 24

// drawRune draws r in a cell at (x, y), magnified w×h.
func (c *canvas) drawRune(r rune, x, y, w, h int, wide, bold bool, underline int) {
	cw := cellW * w
	if wide {
		cw *= 2
	}
	if g, ok := glyph(r); ok && !wide {
		for row := 0; row < 7; row++ {
			for col := 0; col < 5; col++ {
				if g[row]&(0x10>>col) == 0 {
					continue
				}
				px, py := x+(1+col*2)*w, y+(1+row*3)*h
				c.rect(px, py, 2*w, 3*h)
				if bold {
					c.rect(px+1, py, 2*w, 3*h)
				}
			}
		}
	} else if r != ' ' {
		// No glyph (CJK and the like): an outlined box the size of the
		// character, so the layout stays visible.
		x0, y0, x1, y1 := x+2, y+2, x+cw-3, y+cellH*h-3
		for i := x0; i <= x1; i++ {
			c.dot(i, y0)
			c.dot(i, y1)
		}
		for i := y0; i <= y1; i++ {
			c.dot(x0, i)
			c.dot(x1, i)
		}
		c.rect((x0+x1)/2-1, (y0+y1)/2-1, 3, 3)
	}
	if underline > 0 {
		c.rect(x, y+cellH*h-underline, cw, underline)
	}
}

func (c *canvas) bitmap(al escpos.Align, bm escpos.Bitmap) {
	c.grow(bm.Height)
	x0 := c.left(al, bm.Width)
	for y := 0; y < bm.Height; y++ {
		for x := 0; x < bm.Width; x++ {
			if bm.Black(x, y) {
				c.dot(x0+x, c.y+y)
			}
		}
	}
	c.y += bm.Height
}

// PNG renders the job on paper dots wide (384 for 58 mm, 576 for 80 mm)
// with a built-in 5×7 font scaled to Font A cells. CJK characters are
// drawn as boxes (the virtual printer has no CJK font); QR codes, barcodes
// and raster images are drawn dot for dot.
func (j Job) PNG(dots int) ([]byte, error) {
	c := newCanvas(dots)
	c.grow(cellH)
	c.y = 12 // top margin
	for _, it := range j.Items {
		switch it.Kind {
		case ItemText:
			h := 1
			w := 0
			for _, s := range it.Spans {
				h = max(h, s.H)
				w += spanCols(s) * cellW
			}
			lineH := max(lineDots, cellH*h+6)
			c.grow(lineH)
			x := c.left(it.Align, w)
			for _, s := range it.Spans {
				for _, r := range s.Text {
					// taller characters share the baseline
					c.drawRune(r, x, c.y+cellH*(h-s.H), s.W, s.H, s.Wide, s.Bold, s.Underline)
					step := cellW * s.W
					if s.Wide {
						step *= 2
					}
					x += step
				}
			}
			c.y += lineH
		case ItemImage, ItemQR:
			if it.Bitmap.Width > 0 {
				c.bitmap(it.Align, it.Bitmap)
			}
		case ItemBarcode:
			bc, err := code128.Encode(it.Data)
			if err != nil {
				continue
			}
			mod := max(1, it.BarWidth)
			n := bc.Bounds().Dx()
			bm := escpos.Bitmap{Width: n * mod, Height: max(1, it.BarHeight), BytesPerRow: (n*mod + 7) / 8}
			bm.Bits = make([]byte, bm.BytesPerRow*bm.Height)
			for i := 0; i < n; i++ {
				if color.GrayModel.Convert(bc.At(i, 0)).(color.Gray).Y >= 0x80 {
					continue
				}
				for y := 0; y < bm.Height; y++ {
					for d := 0; d < mod; d++ {
						x := i*mod + d
						bm.Bits[y*bm.BytesPerRow+x/8] |= 0x80 >> (x % 8)
					}
				}
			}
			c.bitmap(it.Align, bm)
		case ItemFeed:
			c.grow(it.Dots)
			c.y += it.Dots
		}
	}
	c.grow(12)
	c.y += 12
	out := c.img.SubImage(image.Rect(0, 0, dots, c.y))
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return nil, fmt.Errorf("encode receipt png: %w", err)
	}
	return buf.Bytes(), nil
}
