package escpos

import (
	"fmt"
	"image"
	"image/color"

	"github.com/boombuler/barcode/qr"
)

// MaxBandRows is the most rows one GS v 0 command carries. Printers with
// small buffers drop bytes of bigger images and then misread the commands
// that follow (DEVICE-PROTOCOLS.md §1, "Garbage output"), so images are
// sent in bands of at most this many rows.
const MaxBandRows = 256

// Bitmap is a 1-bit image: Bits holds Height rows of BytesPerRow bytes,
// most significant bit leftmost, 1 = black (the GS v 0 raster format).
type Bitmap struct {
	Width, Height, BytesPerRow int
	Bits                       []byte
}

// Black reports whether the dot at (x, y) is black.
func (m Bitmap) Black(x, y int) bool {
	return m.Bits[y*m.BytesPerRow+x/8]&(0x80>>(x%8)) != 0
}

// Threshold converts img to a 1-bit bitmap: a pixel is black when its
// luminance, composed over white, is below 50 %.
func Threshold(img image.Image) Bitmap {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	bm := Bitmap{Width: w, Height: h, BytesPerRow: (w + 7) / 8}
	bm.Bits = make([]byte, bm.BytesPerRow*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA64Model.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA64)
			// composite over white, then ITU-R 601 luma on 16-bit values
			a := uint32(c.A)
			blend := func(v uint16) uint32 { return (uint32(v)*a + 0xFFFF*(0xFFFF-a)) / 0xFFFF }
			luma := (299*blend(c.R) + 587*blend(c.G) + 114*blend(c.B)) / 1000
			if luma < 0x8000 {
				bm.Bits[y*bm.BytesPerRow+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return bm
}

// Raster prints a bitmap with GS v 0 m xL xH yL yH d… (1D 76 30 00 …),
// mode 0 (normal size), in bands of at most MaxBandRows rows.
func (b *Builder) Raster(bm Bitmap) *Builder {
	if bm.Width < 1 || bm.Height < 1 || bm.BytesPerRow > 0xFFFF || len(bm.Bits) != bm.BytesPerRow*bm.Height {
		return b.fail(fmt.Errorf("%w: raster %dx%d", ErrBadArgument, bm.Width, bm.Height))
	}
	for y := 0; y < bm.Height; y += MaxBandRows {
		rows := min(MaxBandRows, bm.Height-y)
		x := bm.BytesPerRow
		b.Raw(GS, 'v', '0', 0, byte(x), byte(x>>8), byte(rows), byte(rows>>8))
		b.Raw(bm.Bits[y*x : (y+rows)*x]...)
	}
	return b
}

// Image thresholds img (Threshold) and prints it as a raster (a logo).
func (b *Builder) Image(img image.Image) *Builder { return b.Raster(Threshold(img)) }

// QRBitmap renders data as a QR code bitmap with module dots per module
// and a 4-module quiet zone, for printers without native GS ( k.
func QRBitmap(data string, module int, level QRLevel) (Bitmap, error) {
	if module < 1 || module > 16 {
		return Bitmap{}, fmt.Errorf("%w: QR module %d", ErrBadArgument, module)
	}
	lv := [...]qr.ErrorCorrectionLevel{qr.L, qr.M, qr.Q, qr.H}
	if int(level) >= len(lv) {
		return Bitmap{}, fmt.Errorf("%w: QR level %d", ErrBadArgument, level)
	}
	code, err := qr.Encode(data, lv[level], qr.Auto)
	if err != nil {
		return Bitmap{}, fmt.Errorf("encode QR: %w", err)
	}
	n := code.Bounds().Dx()
	const quiet = 4
	side := (n + 2*quiet) * module
	bm := Bitmap{Width: side, Height: side, BytesPerRow: (side + 7) / 8}
	bm.Bits = make([]byte, bm.BytesPerRow*side)
	for my := 0; my < n; my++ {
		for mx := 0; mx < n; mx++ {
			if color.GrayModel.Convert(code.At(mx, my)).(color.Gray).Y >= 0x80 {
				continue
			}
			for dy := 0; dy < module; dy++ {
				for dx := 0; dx < module; dx++ {
					x, y := (mx+quiet)*module+dx, (my+quiet)*module+dy
					bm.Bits[y*bm.BytesPerRow+x/8] |= 0x80 >> (x % 8)
				}
			}
		}
	}
	return bm, nil
}

// QRRaster prints data as a QR code drawn as a raster image (GS v 0), the
// fallback for printers without GS ( k.
func (b *Builder) QRRaster(data string, module int, level QRLevel) *Builder {
	bm, err := QRBitmap(data, module, level)
	if err != nil {
		return b.fail(err)
	}
	return b.Raster(bm)
}
