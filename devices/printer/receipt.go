package printer

import (
	"fmt"
	"image"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/edgepos/edgepos/devices/printer/escpos"
)

// Unit is how a receipt line's quantity is measured.
type Unit string

// The units.
const (
	UnitEach Unit = "each"
	UnitKg   Unit = "kg"
)

// Receipt is what the agent fills in to print a receipt. Money is int64
// minor units of Currency; quantities are int64 thousandths. The layout
// prints amounts as given: it adds nothing up (that is the ledger's job,
// under its rounding rule).
type Receipt struct {
	// Title is an optional banner above the store name, e.g. "COPY".
	Title string
	// StoreName is printed at double size; Header lines below it
	// (address, phone, tax number).
	StoreName string
	Header    []string
	Terminal  string
	// Number is the human receipt number, e.g. "T1-000123".
	Number  string
	Cashier string
	// Time is the sale's instant; it is printed in Location (default UTC).
	Time     time.Time
	Location *time.Location
	Lines    []Line
	// Subtotal is the sum of the lines' Total (before any discount).
	Subtotal int64
	// Discounts and Coupons are receipt-level reductions, printed as
	// negative amounts (give Amount as a positive reduction).
	Discounts []Adjustment
	Coupons   []Adjustment
	// Taxes are the tax per rate. With TaxIncluded they are printed after
	// the total as "included"; otherwise before it, as added.
	Taxes       []Adjustment
	TaxIncluded bool
	Total       int64
	Tenders     []Adjustment
	Change      int64
	Member      string
	// Points are the member's points, printed under the member; nil
	// prints none.
	Points *Points
	// ReceiptID is the sale's UUID; it is printed as a QR code and as text.
	ReceiptID string
	Footer    []string
	// Currency is the ISO 4217 code, e.g. "CNY"; MinorDigits its minor
	// unit digits (2 for CNY and USD, 0 for JPY).
	Currency    string
	MinorDigits int
}

// Line is one sold item.
type Line struct {
	Name string
	// Qty is in thousandths: 1000 = one each, 532 = 0.532 kg.
	Qty       int64
	Unit      Unit
	UnitPrice int64
	// Total is the line amount before the line discount.
	Total int64
	// Discount is a positive reduction on this line, with its label.
	Discount      int64
	DiscountLabel string
}

// Adjustment is a labelled amount: a discount, coupon, tax or tender.
type Adjustment struct {
	Label  string
	Amount int64
}

// QRMode says how the receipt id QR code is printed.
type QRMode string

// The QR modes.
const (
	// QRNative uses GS ( k (most printers).
	QRNative QRMode = "native"
	// QRRaster draws the code as a GS v 0 image, sent in bands, for
	// printers without GS ( k (DEVICE-PROTOCOLS.md §1, "No GS ( k").
	QRRaster QRMode = "raster"
	// QRNone prints no QR code, only the id as text.
	QRNone QRMode = "none"
)

// Language selects the receipt's fixed labels.
type Language string

// The languages.
const (
	LangEN Language = "en"
	LangZH Language = "zh"
)

// Layout is how a printer lays receipts out.
type Layout struct {
	// Width is the paper width in mm: 58 (32 columns) or 80 (48 columns).
	Width int
	// Encoding selects the text encoding; a Chinese encoding prints the
	// whole receipt in Chinese mode (FS & … FS .).
	Encoding escpos.Encoding
	// CodePage is the ESC t table for non-Chinese printers; default PC437.
	CodePage escpos.CodePage
	// Language of the labels; default zh on a Chinese printer, else en.
	// Chinese labels need a Chinese encoding.
	Language Language
	// QR selects native or raster QR; default native.
	QR QRMode
	// PartialCut cuts partially (leaving a hinge) instead of fully.
	PartialCut bool
	// Logo is printed centred at the top when set (it should be at most
	// Dots() wide).
	Logo image.Image
}

// withDefaults fills unset fields.
func (l Layout) withDefaults() Layout {
	if l.Width == 0 {
		l.Width = 80
	}
	if l.Encoding == "" {
		l.Encoding = escpos.EncASCII
	}
	if l.Language == "" {
		l.Language = LangEN
		if l.Encoding.Chinese() {
			l.Language = LangZH
		}
	}
	if l.QR == "" {
		l.QR = QRNative
	}
	return l
}

// Columns returns the Font A columns of the layout's paper width
// (DEVICE-PROTOCOLS.md §1: 32 on 58 mm, 48 on 80 mm).
func (l Layout) Columns() int {
	if l.Width == 58 {
		return 32
	}
	return 48
}

// Dots returns the printable width in dots at 203 dpi (384 or 576).
func (l Layout) Dots() int {
	if l.Width == 58 {
		return 384
	}
	return 576
}

// Validate checks the layout (after defaults) without printing anything:
// paper width, encoding, code page, language and QR mode.
func (l Layout) Validate() error {
	l = l.withDefaults()
	if l.Width != 58 && l.Width != 80 {
		return fmt.Errorf("%w: paper width %d mm (want 58 or 80)", ErrBadLayout, l.Width)
	}
	if _, err := escpos.ParseEncoding(string(l.Encoding)); err != nil {
		return fmt.Errorf("%w: %w", ErrBadLayout, err)
	}
	if !l.Encoding.Chinese() && !l.CodePage.Known() {
		// the same wording as the builder's error, checked up front
		return fmt.Errorf("%w: %w", ErrBadLayout, escpos.NewBuilder(escpos.EncASCII).CodePage(l.CodePage).Err())
	}
	switch l.Language {
	case LangEN:
	case LangZH:
		if !l.Encoding.Chinese() {
			return fmt.Errorf("%w: Chinese labels need a gbk or gb18030 printer, not %s", ErrBadLayout, l.Encoding)
		}
	default:
		return fmt.Errorf("%w: language %q (want en or zh)", ErrBadLayout, l.Language)
	}
	switch l.QR {
	case QRNative, QRRaster, QRNone:
	default:
		return fmt.Errorf("%w: qr mode %q (want native, raster or none)", ErrBadLayout, l.QR)
	}
	return nil
}

// Rendered is a document's ESC/POS byte stream.
type Rendered struct {
	Data []byte
	// Replaced counts characters the printer's encoding cannot represent,
	// printed as '?'. The agent logs it.
	Replaced int
}

type labels struct {
	receipt, terminal, cashier, time, subtotal, total, change, member, discount, coupon, inclTax string
}

var (
	labelsEN = labels{"Receipt", "Terminal", "Cashier", "Time", "Subtotal", "TOTAL", "Change", "Member", "Discount", "Coupon", "Tax included"}
	labelsZH = labels{"单号", "终端", "收银员", "时间", "小计", "合计", "找零", "会员", "优惠", "优惠券", "其中税额"}
)

// doc is the part of a layout shared by receipts and slips.
type doc struct {
	l    Layout
	b    *escpos.Builder
	w    textWidth
	cols int
	lb   labels
	rule string
}

func newDoc(l Layout) (*doc, error) {
	l = l.withDefaults()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	d := &doc{l: l, b: escpos.NewBuilder(l.Encoding), w: newTextWidth(l.Encoding), cols: l.Columns(), lb: labelsEN}
	if l.Language == LangZH {
		d.lb = labelsZH
	}
	d.rule = strings.Repeat("-", d.cols)
	d.b.Init()
	if l.Encoding.Chinese() {
		d.b.ChineseOn()
	} else {
		d.b.CodePage(l.CodePage)
	}
	if l.Logo != nil {
		d.b.Align(escpos.AlignCenter).Image(l.Logo).Align(escpos.AlignLeft)
	}
	return d, nil
}

// head prints the title and the store header, centred.
func (d *doc) head(title, store string, header []string) {
	d.b.Align(escpos.AlignCenter)
	if title != "" {
		d.b.Bold(true).Line(d.w.truncate(title, d.cols)).Bold(false)
	}
	if store != "" {
		// double width and height: half the columns
		d.b.Size(2, 2).Bold(true).Line(d.w.truncate(store, d.cols/2)).Bold(false).Size(1, 1)
	}
	for _, s := range header {
		d.b.Line(d.w.truncate(s, d.cols))
	}
	d.b.Align(escpos.AlignLeft)
}

// centred prints lines centred, wrapping each at the paper width.
func (d *doc) centred(lines []string) {
	d.b.Align(escpos.AlignCenter)
	for _, s := range lines {
		for _, part := range d.w.wrap(s, d.cols) {
			d.b.Line(part)
		}
	}
	d.b.Align(escpos.AlignLeft)
}

// end leaves Chinese mode, feeds the paper past the cutter and cuts.
func (d *doc) end(what string) (Rendered, error) {
	if d.l.Encoding.Chinese() {
		d.b.ChineseOff()
	}
	d.b.Feed(3).Cut(d.l.PartialCut)
	data, err := d.b.Bytes()
	if err != nil {
		return Rendered{}, fmt.Errorf("render %s: %w", what, err)
	}
	return Rendered{Data: data, Replaced: d.b.Replaced()}, nil
}

// Render lays r out for l and returns the ESC/POS bytes: init, logo,
// title, store header, receipt number, terminal, cashier and time, the
// lines (quantity × unit price for several or weighed items, line
// discounts), subtotal, discounts, coupons, added taxes, the total at
// double height, tenders, change, included taxes, member and points, the receipt id
// as a QR code and as text, the footer, a feed and the cut.
func Render(r Receipt, l Layout) (Rendered, error) {
	if r.MinorDigits < 0 || r.MinorDigits > 4 {
		return Rendered{}, fmt.Errorf("%w: minor digits %d", ErrBadLayout, r.MinorDigits)
	}
	d, err := newDoc(l)
	if err != nil {
		return Rendered{}, err
	}
	b, w, cols, lb := d.b, d.w, d.cols, d.lb
	money := func(v int64) string { return FormatMoney(v, r.Currency, r.MinorDigits) }

	d.head(r.Title, r.StoreName, r.Header)
	b.Line(d.rule)
	if r.Number != "" {
		b.Line(w.pair(lb.receipt+": "+r.Number, "", cols))
	}
	if r.Terminal != "" || r.Cashier != "" {
		b.Line(w.pair(lb.terminal+": "+r.Terminal, lb.cashier+": "+r.Cashier, cols))
	}
	if !r.Time.IsZero() {
		loc := r.Location
		if loc == nil {
			loc = time.UTC
		}
		b.Line(w.pair(lb.time+": "+r.Time.In(loc).Format("2006-01-02 15:04:05"), "", cols))
	}
	b.Line(d.rule)
	for _, ln := range r.Lines {
		for _, s := range w.itemName(ln.Name, money(ln.Total), cols) {
			b.Line(s)
		}
		if ln.Qty != 1000 || ln.Unit == UnitKg {
			b.Line(w.pair("  "+formatQty(ln.Qty, ln.Unit)+" x "+money(ln.UnitPrice)+unitSuffix(ln.Unit), "", cols))
		}
		if ln.Discount != 0 {
			label := ln.DiscountLabel
			if label == "" {
				label = lb.discount
			}
			b.Line(w.pair("  "+label, money(-ln.Discount), cols))
		}
	}
	b.Line(d.rule)
	b.Line(w.pair(lb.subtotal, money(r.Subtotal), cols))
	for _, a := range r.Discounts {
		b.Line(w.pair(labelled(lb.discount, a.Label), money(-a.Amount), cols))
	}
	for _, a := range r.Coupons {
		b.Line(w.pair(labelled(lb.coupon, a.Label), money(-a.Amount), cols))
	}
	if !r.TaxIncluded {
		for _, a := range r.Taxes {
			b.Line(w.pair(a.Label, money(a.Amount), cols))
		}
	}
	// TOTAL at double height keeps the full column count
	b.Bold(true).Size(1, 2).Line(w.pair(lb.total, money(r.Total), cols)).Size(1, 1).Bold(false)
	for _, a := range r.Tenders {
		b.Line(w.pair(a.Label, money(a.Amount), cols))
	}
	if r.Change != 0 || len(r.Tenders) > 0 {
		b.Line(w.pair(lb.change, money(r.Change), cols))
	}
	if r.TaxIncluded && len(r.Taxes) > 0 {
		b.Line(lb.inclTax)
		for _, a := range r.Taxes {
			b.Line(w.pair("  "+a.Label, money(a.Amount), cols))
		}
	}
	if r.Member != "" {
		b.Line(w.pair(lb.member+": "+r.Member, "", cols))
	}
	if r.Points != nil {
		d.points(r.Points, money)
	}
	b.Line(d.rule)
	if r.ReceiptID != "" {
		b.Align(escpos.AlignCenter)
		module := 6
		if d.l.Width == 58 {
			module = 4
		}
		switch d.l.QR {
		case QRRaster:
			b.QRRaster(r.ReceiptID, module, escpos.QRLevelM)
		case QRNative:
			b.QR(r.ReceiptID, module, escpos.QRLevelM)
		}
		b.Align(escpos.AlignLeft)
		d.centred([]string{r.ReceiptID})
	}
	d.centred(r.Footer)
	return d.end("receipt " + r.Number)
}

// labelled joins a fixed label and a detail: "Coupon: C-1".
func labelled(label, detail string) string {
	if detail == "" {
		return label
	}
	return label + ": " + detail
}

// Slip is a plain document such as an X or Z report: a title, header
// lines, rows of label and value, and footer lines.
type Slip struct {
	Title     string
	StoreName string
	Header    []string
	Rows      []Row
	Footer    []string
}

// Row is one line of a Slip: Left, and Right aligned to the right edge.
// A Rule row prints a dashed line; Bold prints the row in bold.
type Row struct {
	Left, Right string
	Bold        bool
	Rule        bool
}

// RenderSlip lays s out for l: title, store name and header centred, the
// rows, the footer centred, a feed and the cut.
func RenderSlip(s Slip, l Layout) (Rendered, error) {
	d, err := newDoc(l)
	if err != nil {
		return Rendered{}, err
	}
	d.head(s.Title, s.StoreName, s.Header)
	d.b.Line(d.rule)
	for _, r := range s.Rows {
		switch {
		case r.Rule:
			d.b.Line(d.rule)
		case r.Bold:
			d.b.Bold(true).Line(d.w.pair(r.Left, r.Right, d.cols)).Bold(false)
		default:
			d.b.Line(d.w.pair(r.Left, r.Right, d.cols))
		}
	}
	d.b.Line(d.rule)
	d.centred(s.Footer)
	return d.end("slip " + s.Title)
}

// textWidth measures printed columns. On a Chinese printer in Chinese mode
// a character GBK (or GB18030) can encode is a 24-dot glyph, two Font A
// columns, ¥ included (it goes out as ￥); one it cannot encode prints as
// a one-column '?'. On a code-page printer every character is one column.
type textWidth struct {
	chinese bool
	gb18030 bool
}

func newTextWidth(e escpos.Encoding) textWidth {
	return textWidth{chinese: e.Chinese(), gb18030: e == escpos.EncGB18030}
}

func (t textWidth) rune(r rune) int {
	if !t.chinese || r < 0x80 {
		return 1
	}
	if r == 0xA5 {
		return 2
	}
	enc := simplifiedchinese.GBK.NewEncoder()
	if t.gb18030 {
		enc = simplifiedchinese.GB18030.NewEncoder()
	}
	out, err := enc.String(string(r))
	if err != nil || out == "" || (!t.gb18030 && len(out) > 2) {
		return 1 // printed as '?'
	}
	return 2
}

func (t textWidth) of(s string) int {
	n := 0
	for _, r := range s {
		n += t.rune(r)
	}
	return n
}

// truncate cuts s to at most cols columns, never splitting a wide character.
func (t textWidth) truncate(s string, cols int) string {
	n := 0
	for i, r := range s {
		if n+t.rune(r) > cols {
			return s[:i]
		}
		n += t.rune(r)
	}
	return s
}

// wrap cuts s into lines of at most cols columns, after a space or a
// hyphen where there is one in the second half of the line.
func (t textWidth) wrap(s string, cols int) []string {
	var out []string
	for t.of(s) > cols {
		head := t.truncate(s, cols)
		if head == "" { // cols < one character: give up cleanly
			break
		}
		if i := strings.LastIndexAny(head, " -"); i >= len(head)/2 {
			head = head[:i+1]
		}
		out = append(out, strings.TrimRight(head, " "))
		s = strings.TrimLeft(s[len(head):], " ")
	}
	return append(out, s)
}

// pair puts left and right on one line of cols columns, right-aligned;
// left is truncated to leave room for right and one space. A right side
// wider than the line is truncated too.
func (t textWidth) pair(left, right string, cols int) string {
	if right == "" {
		return t.truncate(left, cols)
	}
	right = t.truncate(right, cols)
	rw := t.of(right)
	left = t.truncate(left, max(0, cols-rw-1))
	return left + strings.Repeat(" ", max(1, cols-t.of(left)-rw)) + right
}

// itemName lays out an item name with its amount right-aligned on the
// first line. A name too long for the first line wraps onto a second
// (indented); what does not fit in two lines is cut with "..".
func (t textWidth) itemName(name, total string, cols int) []string {
	room := cols - t.of(total) - 1
	first := t.truncate(name, room)
	if len(first) == len(name) {
		return []string{t.pair(name, total, cols)}
	}
	rest := strings.TrimLeft(name[len(first):], " ")
	second := "  " + rest
	if t.of(second) > cols {
		second = t.truncate(second, cols-2) + ".."
	}
	return []string{t.pair(first, total, cols), second}
}

// FormatMoney formats minor units with the currency's symbol: CNY 1234 →
// "¥12.34", USD -100 → "-$1.00", unknown codes as "CHF 12.34". The ¥ is
// printed as fullwidth ￥ by Chinese printers (see escpos.Builder.Text).
func FormatMoney(minor int64, currency string, digits int) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign = "-"
		u = -u
	}
	num := fmt.Sprint(u)
	if digits > 0 {
		for len(num) <= digits {
			num = "0" + num
		}
		num = num[:len(num)-digits] + "." + num[len(num)-digits:]
	}
	switch currency {
	case "CNY", "JPY":
		return sign + "¥" + num
	case "USD":
		return sign + "$" + num
	case "EUR":
		return sign + "€" + num
	case "GBP":
		return sign + "£" + num
	case "HKD":
		return sign + "HK$" + num
	case "":
		return sign + num
	}
	return sign + currency + " " + num
}

// formatQty prints thousandths: 2000 each → "2", 1500 each → "1.5",
// 532 kg → "0.532 kg".
func formatQty(q int64, u Unit) string {
	sign := ""
	if q < 0 {
		sign, q = "-", -q
	}
	if u == UnitKg {
		return fmt.Sprintf("%s%d.%03d kg", sign, q/1000, q%1000)
	}
	s := fmt.Sprintf("%s%d", sign, q/1000)
	if frac := q % 1000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", frac), "0")
	}
	return s
}

func unitSuffix(u Unit) string {
	if u == UnitKg {
		return "/kg"
	}
	return ""
}
