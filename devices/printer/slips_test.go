package printer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
)

var sampleTime = time.Date(2026, 11, 23, 2, 5, 9, 0, time.UTC)

// sampleReturn is a return against a receipt with a manager's approval:
// two of an item at its unit price, a weighed item, a long name, refunded
// part in cash and part to the card.
func sampleReturn(zh bool) ReturnSlip {
	r := ReturnSlip{
		Title: "RETURN", StoreName: "Demo Mart", Header: []string{"1 Example Road, Shanghai"},
		Terminal: "T1", Number: "T1-R00007", Cashier: "1001", Manager: "9001", OrigNumber: "T1-000042",
		Time: sampleTime, Location: time.FixedZone("CST", 8*3600),
		Lines: []Line{
			{Name: "Oolong tea 500ml", Qty: 2000, Unit: UnitEach, UnitPrice: 450, Total: 810},
			{Name: "Fuji apples", Qty: 532, Unit: UnitKg, UnitPrice: 1398, Total: 744},
			{Name: "Whole wheat bread, family size with seeds", Qty: 1000, Unit: UnitEach, UnitPrice: 890, Total: 890},
		},
		Total:    2444,
		Refunds:  []Adjustment{{Label: "Cash", Amount: 1444}, {Label: "Card", Amount: 1000}},
		Footer:   []string{"Keep this slip with your receipt"},
		Currency: "CNY", MinorDigits: 2,
	}
	if zh {
		r.Title, r.StoreName, r.Header = "退货", "示例便利店", []string{"上海市示例路1号"}
		r.Lines[0].Name, r.Lines[1].Name, r.Lines[2].Name = "乌龙茶 500ml", "富士苹果", "全麦面包（家庭装，含坚果与种子）"
		r.Refunds[0].Label, r.Refunds[1].Label = "现金", "银行卡"
		r.Footer = []string{"请与原小票一并保存"}
	}
	return r
}

// sampleOnlineReturn is an online order returned in the store: the order
// code and its long id, no receipt, the refund owed by the online channel.
func sampleOnlineReturn(zh bool) ReturnSlip {
	r := ReturnSlip{
		Title: "RETURN", StoreName: "Demo Mart", Terminal: "T1", Number: "T1-R00008", Cashier: "1001", Manager: "9001",
		OrderCode: "48213377", OrderID: "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012", Time: sampleTime, Location: time.FixedZone("CST", 8*3600),
		Lines:    []Line{{Name: "Fresh milk 1L", Qty: 1000, Unit: UnitEach, Total: 1290}},
		Total:    1290,
		Refunds:  []Adjustment{{Label: "Refund owed by the online channel", Amount: 1290}},
		Currency: "CNY", MinorDigits: 2,
	}
	if zh {
		r.Title, r.StoreName = "退货", "示例便利店"
		r.Lines[0].Name = "鲜牛奶 1L"
		r.Refunds[0].Label = "由线上渠道退款"
	}
	return r
}

// samplePickup is a hand-over with a line handed in full, one in part, a
// substitute and a missing line.
func samplePickup(zh bool) PickupSlip {
	p := PickupSlip{
		Title: "PICKUP", StoreName: "Demo Mart", Code: "48213377", OrderID: "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012",
		Customer: "Li Lei", Phone: MaskPhone("13800000001"), Terminal: "T1", Cashier: "1001", Time: sampleTime, Location: time.FixedZone("CST", 8*3600),
		Lines: []PickupLine{
			{Name: "Fresh milk 1L", Unit: UnitEach, Ordered: 2000, Handed: 2000},
			{Name: "Fuji apples", Unit: UnitKg, Ordered: 1000, Handed: 532},
			{Name: "Oolong tea 500ml", Unit: UnitEach, Ordered: 1000, Handed: 1000, Substitute: "Mineral water 550ml", SubUnit: UnitEach},
			{Name: "Whole wheat bread", Unit: UnitEach, Ordered: 1000, Missing: true},
		},
		Final: false, Footer: []string{"Thank you!"},
	}
	if zh {
		p.Title, p.StoreName, p.Customer = "自提", "示例便利店", "李雷"
		p.Lines[0].Name, p.Lines[1].Name, p.Lines[2].Name, p.Lines[2].Substitute, p.Lines[3].Name = "鲜牛奶 1L", "富士苹果", "乌龙茶 500ml", "矿泉水 550ml", "全麦面包"
		p.Footer = []string{"谢谢惠顾！"}
	}
	return p
}

// TestGoldenSlips lays out the return slips and the pickup slip in every
// golden layout (58 and 80 mm, English on a code-page printer, Chinese on
// a GBK one) against testdata/, and checks what each must say.
func TestGoldenSlips(t *testing.T) {
	for _, c := range goldenCases {
		suffix := strings.TrimPrefix(c.name, "receipt")
		t.Run("return"+suffix, func(t *testing.T) {
			out, err := RenderReturn(sampleReturn(c.zh), c.layout)
			require.NoError(t, err)
			text, _ := checkGolden(t, "return"+suffix, out, c.layout, c.zh)
			want := []string{`(?m)^Return: T1-R00007$`, `(?m)^Original receipt: T1-000042$`, `(?m)^Approved by: 9001$`,
				`(?m)^  2 x ¥4\.50$`, `(?m)^  0\.532 kg x ¥13\.98/kg$`, `(?m)^REFUND +¥24\.44$`, `(?m)^Cash +¥14\.44$`, `(?m)^Card +¥10\.00$`}
			if c.zh {
				want = []string{`(?m)^退货单号: T1-R00007$`, `(?m)^原小票: T1-000042$`, `(?m)^授权主管: 9001$`,
					`(?m)^  2 x ￥4\.50$`, `(?m)^退款合计 +￥24\.44$`, `(?m)^现金 +￥14\.44$`, `(?m)^银行卡 +￥10\.00$`}
			}
			for _, re := range want {
				assert.Regexp(t, re, text)
			}
		})
		t.Run("return-online"+suffix, func(t *testing.T) {
			out, err := RenderReturn(sampleOnlineReturn(c.zh), c.layout)
			require.NoError(t, err)
			text, _ := checkGolden(t, "return-online"+suffix, out, c.layout, c.zh)
			assert.NotContains(t, text, "T1-0000", "no receipt was returned against")
			assert.Contains(t, strings.ReplaceAll(strings.ReplaceAll(text, "\n", ""), " ", ""), "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012", "the whole order id, wrapped")
			owed := `(?m)^Refund owed by the online +¥12\.90$`
			if c.layout.Width == 80 {
				owed = `(?m)^Refund owed by the online channel +¥12\.90$`
			}
			if c.zh {
				owed = `(?m)^由线上渠道退款 +￥12\.90$`
			}
			assert.Regexp(t, owed, text)
			qty := `(?m)^  Qty 1$`
			if c.zh {
				qty = `(?m)^  数量 1$`
			}
			assert.Regexp(t, qty, text, "no unit price known: the quantity alone")
		})
		t.Run("pickup"+suffix, func(t *testing.T) {
			out, err := RenderPickup(samplePickup(c.zh), c.layout)
			require.NoError(t, err)
			text, _ := checkGolden(t, "pickup"+suffix, out, c.layout, c.zh)
			want := []string{`(?m)^Pickup code: 48213377$`, `(?m)^Customer: Li Lei +138\*\*\*\*0001$`, `(?m)^Fresh milk 1L +2$`,
				`(?m)^Fuji apples +0\.532 kg$`, `(?m)^  ordered 1\.000 kg$`, `(?m)^Mineral water 550ml +1$`, `(?m)^  instead of Oolong tea 500ml$`,
				`(?m)^Whole wheat bread +Missing$`, `(?m)^ *The rest of the order follows$`}
			if c.zh {
				want = []string{`(?m)^取货码: 48213377$`, `(?m)^顾客: 李雷 +138\*\*\*\*0001$`, `(?m)^鲜牛奶 1L +2$`, `(?m)^矿泉水 550ml +1$`,
					`(?m)^  替代 乌龙茶 500ml$`, `(?m)^全麦面包 +缺货$`, `(?m)^ *其余商品稍后交付$`}
			}
			for _, re := range want {
				assert.Regexp(t, re, text)
			}
		})
	}
}

// TestPickupClosingLine: the slip's last words follow the order's state.
func TestPickupClosingLine(t *testing.T) {
	for _, c := range []struct {
		final, complete bool
		want            string
	}{{true, true, "Order complete"}, {true, false, "Order closed: items missing"}, {false, false, "The rest of the order follows"}} {
		out, err := RenderPickup(PickupSlip{Code: "P-1", Final: c.final, Complete: c.complete,
			Lines: []PickupLine{{Name: "Milk", Unit: UnitEach, Ordered: 1000, Handed: 1000}}}, Layout{Width: 58})
		require.NoError(t, err)
		jobs, _ := virtualprinter.Parse(out.Data)
		assert.Contains(t, jobs[0].Text(32), c.want+"\n")
	}
}

// TestReceiptPointsPending: a member the store does not know prints one
// line about the points instead of figures.
func TestReceiptPointsPending(t *testing.T) {
	out, err := Render(Receipt{Member: "13900000009", Points: &Points{Pending: true}, Currency: "CNY", MinorDigits: 2}, Layout{Width: 58, Encoding: escpos.EncGBK})
	require.NoError(t, err)
	jobs, _ := virtualprinter.Parse(out.Data)
	text := jobs[0].Text(32)
	assert.Contains(t, text, "积分：由总部补记\n")
	assert.NotContains(t, text, "积分余额")
}

// TestReturnSlipPoints: a member's return prints the points it took back
// and gave back and the balance; an unknown member one line; a return
// without points none (the golden slips).
func TestReturnSlipPoints(t *testing.T) {
	text := func(r ReturnSlip, zh bool) string {
		l := Layout{Width: 58}
		if zh {
			l.Encoding, l.Language = escpos.EncGBK, LangZH
		}
		out, err := RenderReturn(r, l)
		require.NoError(t, err)
		jobs, _ := virtualprinter.Parse(out.Data)
		return jobs[0].Text(32)
	}
	r := sampleReturn(false)
	r.Points = &ReturnPoints{TakenBack: 12, GivenBack: 300, GivenBackValue: 300, Balance: 1488}
	got := text(r, false)
	assert.Regexp(t, `(?m)^Points taken back +-12$`, got)
	assert.Regexp(t, `(?m)^Points given back +300 \(¥3\.00\)$`, got)
	assert.Regexp(t, `(?m)^Points balance +1488$`, got)

	r = sampleReturn(true)
	r.Points = &ReturnPoints{TakenBack: 5, Balance: 20}
	got = text(r, true)
	assert.Regexp(t, `(?m)^扣回积分 +-5$`, got)
	assert.NotContains(t, got, "退回积分", "nothing spent, nothing given back")
	assert.Regexp(t, `(?m)^积分余额 +20$`, got)

	r.Points = &ReturnPoints{Pending: true}
	got = text(r, true)
	assert.Contains(t, got, "积分：由总部调整\n")
	assert.NotContains(t, got, "积分余额")

	r.Points = nil
	assert.NotContains(t, text(r, true), "积分")
}

func TestMaskPhone(t *testing.T) {
	assert.Equal(t, "138****0001", MaskPhone("13800000001"))
	assert.Equal(t, "021****0100", MaskPhone("02155550100"))
	assert.Equal(t, "1****67", MaskPhone("1234567"))
	assert.Equal(t, "****", MaskPhone("1234"))
	assert.Equal(t, "", MaskPhone(""))
}
