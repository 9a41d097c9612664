package printer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const sampleID = "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012"

// sampleReceipt is a sale with everything a receipt can show: several of
// an item with an item discount, a weighed item, a sale discount, a
// coupon, two tax rates (included), a split tender (part in points) with
// change, a member and their points.
func sampleReceipt(zh bool) Receipt {
	r := Receipt{
		StoreName: "Demo Mart", Header: []string{"1 Example Road, Shanghai", "Tel 021-5555 0100"},
		Terminal: "T1", Number: "T1-000042", Cashier: "1001",
		Time: time.Date(2026, 11, 23, 2, 5, 9, 0, time.UTC), Location: time.FixedZone("CST", 8*3600),
		Lines: []Line{
			{Name: "Oolong tea 500ml", Qty: 2000, Unit: UnitEach, UnitPrice: 450, Total: 900, Discount: 90, DiscountLabel: "Discount 10%"},
			{Name: "Fuji apples", Qty: 532, Unit: UnitKg, UnitPrice: 1398, Total: 744},
			{Name: "Whole wheat bread, family size with seeds", Qty: 1000, Unit: UnitEach, UnitPrice: 890, Total: 890},
		},
		Subtotal:    2534,
		Discounts:   []Adjustment{{Label: "5%", Amount: 122}},
		Coupons:     []Adjustment{{Label: "C-2026-0001", Amount: 200}},
		Taxes:       []Adjustment{{Label: "VAT 9%", Amount: 117}, {Label: "VAT 13%", Amount: 84}},
		TaxIncluded: true,
		Total:       2122,
		Tenders:     []Adjustment{{Label: "Card", Amount: 1000}, {Label: "Points", Amount: 100}, {Label: "Cash", Amount: 2000}},
		Change:      978,
		Member:      "M0001",
		Points:      &Points{Earned: 20, Spent: 100, SpentValue: 100, Balance: 1200},
		ReceiptID:   sampleID,
		Footer:      []string{"Thank you!", "Returns within 7 days with this receipt"},
		Currency:    "CNY", MinorDigits: 2,
	}
	if zh {
		r.StoreName = "示例便利店"
		r.Header = []string{"上海市示例路1号", "电话 021-5555 0100"}
		r.Lines[0].Name, r.Lines[0].DiscountLabel = "乌龙茶 500ml", "折扣 10%"
		r.Lines[1].Name = "富士苹果"
		r.Lines[2].Name = "全麦面包（家庭装，含坚果与种子）"
		r.Discounts[0].Label = "整单 5%"
		r.Coupons[0].Label = "C-2026-0001"
		r.Taxes = []Adjustment{{Label: "增值税 9%", Amount: 117}, {Label: "增值税 13%", Amount: 84}}
		r.Tenders = []Adjustment{{Label: "银行卡", Amount: 1000}, {Label: "积分", Amount: 100}, {Label: "现金", Amount: 2000}}
		r.Footer = []string{"谢谢惠顾！", "凭小票7天内退换"}
	}
	return r
}

var goldenCases = []struct {
	name   string
	zh     bool
	layout Layout
}{
	{"receipt-en-80", false, Layout{Width: 80, Encoding: escpos.EncASCII, CodePage: escpos.PC437}},
	{"receipt-en-58", false, Layout{Width: 58, Encoding: escpos.EncASCII, CodePage: escpos.PC437, QR: QRRaster}},
	{"receipt-zh-80", true, Layout{Width: 80, Encoding: escpos.EncGBK}},
	{"receipt-zh-58", true, Layout{Width: 58, Encoding: escpos.EncGBK, QR: QRRaster, PartialCut: true}},
}

// displayWidth is what a line of Job.Text takes on paper: CJK characters
// (anything outside ASCII on a Chinese printer, ￥ included) are two columns.
func displayWidth(s string, chinese bool) int {
	n := 0
	for _, r := range s {
		if chinese && r >= 0x80 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// TestGoldenReceipts renders the sample receipt for each paper width and
// encoding, compares the bytes with testdata/NAME.bin, and has the virtual
// printer parse the golden stream back to testdata/NAME.txt. go test
// -run 'TestGolden' -update rewrites both.
func TestGoldenReceipts(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Render(sampleReceipt(c.zh), c.layout)
			require.NoError(t, err)
			text, gjob := checkGolden(t, c.name, out, c.layout, c.zh)
			total := "TOTAL"
			if c.zh {
				total = "合计"
			}
			assert.Regexp(t, `(?m)^`+total+` +￥?¥?21\.22$`, text)
			points := `(?m)^Points used +100 \(-¥1\.00\)$`
			if c.zh {
				points = `(?m)^使用积分 +100 \(-￥1\.00\)$`
			}
			assert.Regexp(t, points, text)
			var qr []string
			for _, it := range gjob.Items {
				if it.Kind == virtualprinter.ItemQR || (it.Kind == virtualprinter.ItemImage && c.layout.QR == QRRaster) {
					qr = append(qr, it.Data)
				}
			}
			require.Len(t, qr, 1, "one QR code")
			if c.layout.QR == QRNative {
				assert.Equal(t, sampleID, qr[0])
			}
		})
	}
}

// checkGolden compares a rendered document with testdata/NAME.bin (bytes)
// and NAME.txt (the virtual printer's text of the golden bytes), rewriting
// both with -update. Whatever the golden says, every line must fit the
// paper (CJK characters two columns), the virtual printer must understand
// every byte, and every character must be printable. It returns the text
// and the parsed job.
func checkGolden(t *testing.T, name string, out Rendered, layout Layout, zh bool) (string, virtualprinter.Job) {
	t.Helper()
	bin := filepath.Join("testdata", name+".bin")
	txt := filepath.Join("testdata", name+".txt")
	jobs, unknown := virtualprinter.Parse(out.Data)
	require.Len(t, jobs, 1, "one document, ended by its cut")
	require.Empty(t, jobs[0].Interrupted)
	require.Zero(t, unknown, "the virtual printer understands every byte")
	cols := layout.Columns()
	text := jobs[0].Text(cols)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(bin, out.Data, 0o644))
		require.NoError(t, os.WriteFile(txt, []byte(text), 0o644))
	}
	want, err := os.ReadFile(bin)
	require.NoError(t, err, "run with -update to create it")
	require.True(t, bytes.Equal(want, out.Data), "rendered bytes differ from %s (run with -update after checking the diff of the .txt)", bin)

	// The golden stream parses back to the golden text.
	gjobs, _ := virtualprinter.Parse(want)
	wantText, err := os.ReadFile(txt)
	require.NoError(t, err)
	require.Equal(t, string(wantText), gjobs[0].Text(cols))
	for _, ln := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		assert.LessOrEqual(t, displayWidth(ln, zh), cols, "line too wide: %q", ln)
	}
	assert.Equal(t, 0, out.Replaced, "every character of the sample is printable")
	return text, gjobs[0]
}

// TestRasterQRIsSentInBands checks the raster fallback: the QR bitmap the
// printer assembles from the GS v 0 bands is the one QRBitmap draws.
func TestRasterQRIsSentInBands(t *testing.T) {
	out, err := Render(Receipt{ReceiptID: sampleID, Currency: "CNY", MinorDigits: 2}, Layout{Width: 58, QR: QRRaster})
	require.NoError(t, err)
	jobs, _ := virtualprinter.Parse(out.Data)
	require.Len(t, jobs, 1)
	want, err := escpos.QRBitmap(sampleID, 4, escpos.QRLevelM)
	require.NoError(t, err)
	var got *escpos.Bitmap
	for _, it := range jobs[0].Items {
		if it.Kind == virtualprinter.ItemImage {
			got = &it.Bitmap
		}
	}
	require.NotNil(t, got)
	assert.Equal(t, want.Height, got.Height)
	assert.Equal(t, want.Bits, got.Bits)
	assert.LessOrEqual(t, want.Width, 384, "fits 58 mm paper")
	assert.Equal(t, bytes.Count(out.Data, []byte{escpos.GS, 'v', '0'}), (want.Height+escpos.MaxBandRows-1)/escpos.MaxBandRows)
}

// TestUnencodableCharactersAreReplacedAndCounted prints Chinese names on
// a code-page printer and an emoji on a GBK printer: each character that
// cannot be printed becomes one '?', is counted, and the layout stays in
// its columns.
func TestUnencodableCharactersAreReplacedAndCounted(t *testing.T) {
	r := Receipt{Lines: []Line{{Name: "乌龙茶", Qty: 1000, Total: 450}, {Name: "Apple 🍎", Qty: 1000, Total: 100}}, Total: 550, Currency: "CNY", MinorDigits: 2}

	out, err := Render(r, Layout{Width: 58, Encoding: escpos.EncASCII})
	require.NoError(t, err)
	assert.Equal(t, 4, out.Replaced, "three Han characters and one emoji")
	jobs, _ := virtualprinter.Parse(out.Data)
	text := jobs[0].Text(32)
	assert.Contains(t, text, "???                        ¥4.50\n")
	assert.Contains(t, text, "Apple ?                    ¥1.00\n")

	out, err = Render(r, Layout{Width: 58, Encoding: escpos.EncGBK})
	require.NoError(t, err)
	assert.Equal(t, 1, out.Replaced, "GBK has the tea, not the apple emoji")
	jobs, _ = virtualprinter.Parse(out.Data)
	text = jobs[0].Text(32)
	// Han characters are two columns, ¥ goes out as ￥ (two), '?' is one:
	// both item lines end exactly at the right edge.
	assert.Regexp(t, `(?m)^乌龙茶 +￥4\.50$`, text)
	assert.Regexp(t, `(?m)^Apple \? +￥1\.00$`, text)
	for _, ln := range strings.Split(text, "\n") {
		if strings.Contains(ln, "￥") {
			assert.Equal(t, 32, displayWidth(ln, true), "%q", ln)
		}
	}
}

func TestYenIsFullwidthOnGBK(t *testing.T) {
	out, err := Render(Receipt{Total: 100, Currency: "CNY", MinorDigits: 2}, Layout{Encoding: escpos.EncGBK})
	require.NoError(t, err)
	assert.True(t, bytes.Contains(out.Data, []byte{0xA3, 0xA4, '1', '.', '0', '0'}), "￥ is GBK A3 A4")
	assert.False(t, bytes.Contains(out.Data, []byte{0x81, 0x30, 0x84, 0x36}), "never the 4-byte GB18030 ¥")
}

// TestUnknownCodePage: a code page we have no table for is a clear layout
// error, from Validate and from Render, before anything is printed.
func TestUnknownCodePage(t *testing.T) {
	l := Layout{Width: 80, Encoding: escpos.EncASCII, CodePage: 42}
	err := l.Validate()
	require.ErrorIs(t, err, ErrBadLayout)
	require.ErrorIs(t, err, escpos.ErrUnknownCodePage)
	assert.Contains(t, err.Error(), "ESC t 42")
	_, err = Render(sampleReceipt(false), l)
	require.ErrorIs(t, err, escpos.ErrUnknownCodePage)
	// A Chinese printer does not use ESC t: the code page does not matter.
	require.NoError(t, Layout{Encoding: escpos.EncGBK, CodePage: 42}.Validate())
}

func TestLayoutValidate(t *testing.T) {
	for _, c := range []struct {
		l    Layout
		want string
	}{
		{Layout{Width: 76}, "paper width 76"},
		{Layout{Encoding: "big5"}, "big5"},
		{Layout{Language: "zh"}, "Chinese labels need a gbk or gb18030 printer"},
		{Layout{Language: "fr"}, `language "fr"`},
		{Layout{QR: "pdf417"}, `qr mode "pdf417"`},
	} {
		err := c.l.Validate()
		require.ErrorIs(t, err, ErrBadLayout, "%+v", c.l)
		assert.Contains(t, err.Error(), c.want)
	}
}

func TestSlip(t *testing.T) {
	out, err := RenderSlip(Slip{Title: "Z REPORT", StoreName: "Demo Mart", Rows: []Row{
		{Left: "Business day", Right: "2026-11-23"}, {Rule: true}, {Left: "Net", Right: "¥1,234.00", Bold: true},
	}, Footer: []string{"Z0001"}}, Layout{Width: 58})
	require.NoError(t, err)
	jobs, unknown := virtualprinter.Parse(out.Data)
	require.Zero(t, unknown)
	require.Len(t, jobs, 1)
	text := jobs[0].Text(32)
	assert.Contains(t, text, "Business day          2026-11-23\n")
	assert.Contains(t, text, "Net                    ¥1,234.00\n")
	assert.Contains(t, text, "Z REPORT")
}

func TestFormatMoneyAndQty(t *testing.T) {
	assert.Equal(t, "¥12.34", FormatMoney(1234, "CNY", 2))
	assert.Equal(t, "-$0.05", FormatMoney(-5, "USD", 2))
	assert.Equal(t, "¥500", FormatMoney(500, "JPY", 0))
	assert.Equal(t, "CHF 1.000", FormatMoney(1000, "CHF", 3))
	assert.Equal(t, "2", formatQty(2000, UnitEach))
	assert.Equal(t, "1.5", formatQty(1500, UnitEach))
	assert.Equal(t, "0.532 kg", formatQty(532, UnitKg))
}

func TestTextWidthHelpers(t *testing.T) {
	w := newTextWidth(escpos.EncGBK)
	assert.Equal(t, 4, w.of("中文"))
	assert.Equal(t, 2, w.of("¥"))
	assert.Equal(t, "中", w.truncate("中文", 3), "never half a character")
	assert.Equal(t, []string{"中文中", "文"}, w.wrap("中文中文", 6))
	// right side wider than the paper never panics
	assert.LessOrEqual(t, utf8.RuneCountInString(newTextWidth(escpos.EncASCII).pair("a", strings.Repeat("x", 60), 32)), 33)
}
