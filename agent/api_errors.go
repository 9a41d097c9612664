package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/edgepos/edgepos/agent/barcode"
)

// errorCodes maps each ledger sentinel to the HTTP status and the stable
// code clients key on. Order matters where errors wrap each other: the
// more specific first.
var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{ErrLockedOut, http.StatusLocked, "locked_out"},
	{ErrBadPIN, http.StatusUnauthorized, "bad_pin"},
	{ErrPINFormat, http.StatusBadRequest, "pin_format"},
	{ErrNeedsManager, http.StatusForbidden, "needs_manager"},
	{ErrNotManager, http.StatusForbidden, "not_manager"},
	{ErrUnknownCode, http.StatusUnprocessableEntity, "unknown_code"},
	{barcode.ErrCheckDigit, http.StatusUnprocessableEntity, "check_digit"},
	{barcode.ErrMalformed, http.StatusUnprocessableEntity, "malformed_barcode"},
	{barcode.ErrNotProduct, http.StatusUnprocessableEntity, "not_product"},
	{ErrCouponSignature, http.StatusUnprocessableEntity, "coupon_signature"},
	{ErrCouponUnknownKey, http.StatusUnprocessableEntity, "coupon_unknown_key"},
	{ErrCouponExpired, http.StatusUnprocessableEntity, "coupon_expired"},
	{ErrCouponUsed, http.StatusConflict, "coupon_used"},
	{ErrCouponMinSpend, http.StatusUnprocessableEntity, "coupon_min_spend"},
	{ErrCouponNotEligible, http.StatusUnprocessableEntity, "coupon_not_eligible"},
	{ErrCouponRevoked, http.StatusUnprocessableEntity, "coupon_revoked"},
	{ErrCouponCurrency, http.StatusUnprocessableEntity, "coupon_currency"},
	{ErrCouponStore, http.StatusUnprocessableEntity, "coupon_store"},
	{ErrPickupUnknown, http.StatusNotFound, "pickup_unknown"},
	{ErrPickupOtherStore, http.StatusUnprocessableEntity, "pickup_other_store"},
	{ErrPickupHandedOver, http.StatusConflict, "pickup_handed"},
	{ErrPickupCancelled, http.StatusConflict, "pickup_cancelled"},
	{ErrPickupLines, http.StatusUnprocessableEntity, "pickup_lines"},
	{ErrPointsMember, http.StatusUnprocessableEntity, "points_member"},
	{ErrPointsBalance, http.StatusUnprocessableEntity, "points_balance"},
	{ErrPointsCap, http.StatusUnprocessableEntity, "points_cap"},
	{ErrMemberCode, http.StatusUnprocessableEntity, "member_code"},
	{ErrBadQuantity, http.StatusUnprocessableEntity, "bad_quantity"},
	{ErrStockReason, http.StatusUnprocessableEntity, "stock_reason"},
	{ErrBadPrice, http.StatusUnprocessableEntity, "bad_price"},
	{ErrBadAmount, http.StatusUnprocessableEntity, "bad_amount"},
	{ErrInactive, http.StatusUnprocessableEntity, "inactive"},
	{ErrEmptySale, http.StatusConflict, "empty_sale"},
	{ErrTenderShort, http.StatusConflict, "tender_short"},
	{ErrChangeNotCash, http.StatusUnprocessableEntity, "change_not_cash"},
	{ErrRefundTooLarge, http.StatusUnprocessableEntity, "refund_too_large"},
	{ErrReturnTooMany, http.StatusUnprocessableEntity, "return_too_many"},
	{ErrShiftOpen, http.StatusConflict, "shift_open"},
	{ErrNoShift, http.StatusConflict, "no_shift"},
	{ErrDuplicateKey, http.StatusConflict, "duplicate_key"},
	{ErrSaleState, http.StatusConflict, "sale_state"},
	{ErrNotFound, http.StatusNotFound, "not_found"},
}

// classify turns any error into the apiError the client sees.
func (a *API) classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return newErr(m.status, m.code, err)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return newErr(http.StatusServiceUnavailable, "unavailable", err)
	}
	if isTooLarge(err) {
		return newErr(http.StatusRequestEntityTooLarge, "too_large", err, a.cfg.MaxBody)
	}
	if isStorageError(err) {
		return newErr(http.StatusInternalServerError, "internal", err)
	}
	// The ledger's plain validation errors ("refunds add up to …") carry
	// no sentinel; they are the cashier's to fix, not a server fault.
	return newErr(http.StatusUnprocessableEntity, "invalid", err)
}

// isStorageError tells a database failure from a validation message.
func isStorageError(err error) bool {
	s := err.Error()
	for _, w := range []string{"sql:", "SQLITE", "database", "disk", "sqlite"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// messages are the cashier-readable texts per code and locale; %v takes
// the apiError's args.
var messages = map[string][2]string{ // {zh-CN, en}
	"bad_json":            {"请求格式错误。", "The request is not valid JSON."},
	"too_large":           {"请求内容过大（上限 %v 字节）。", "The request is too large (at most %v bytes)."},
	"csrf":                {"安全校验失败，请刷新页面后重试。", "Security check failed. Reload the page and try again."},
	"unauthenticated":     {"请先登录。", "Please log in."},
	"forbidden":           {"您没有此操作的权限。", "You are not allowed to do this."},
	"not_found":           {"未找到。", "Not found."},
	"bad_request":         {"请求参数错误。", "The request is missing something or has a wrong value."},
	"unknown_code":        {"条码 %v 不在商品目录中。请手工输入商品或联系主管。", "Barcode %v is not in the catalog. Key the item in or call a supervisor."},
	"malformed_barcode":   {"无法识别的条码，请重新扫描。", "This barcode cannot be read. Scan it again."},
	"check_digit":         {"条码校验位错误，请重新扫描。", "The barcode's check digit is wrong. Scan it again."},
	"not_product":         {"这是一张优惠券，不是商品。", "This is a coupon, not a product."},
	"bad_quantity":        {"数量不正确：必须大于零，计件商品必须为整数。", "Wrong quantity: it must be above zero, and whole for items sold by the piece."},
	"stock_reason":        {"库存调整原因不正确，或与数量方向不符（到货为增加，报损为减少）。", "Unknown stock reason, or the quantity goes the wrong way for it (a delivery adds, a write-off removes)."},
	"bad_price":           {"价格不能为负数。", "The price cannot be negative."},
	"bad_amount":          {"金额必须大于零。", "The amount must be above zero."},
	"inactive":            {"该商品已停售。", "This product is not for sale."},
	"sale_state":          {"当前交易状态不允许此操作。", "The sale is not in a state that allows this."},
	"empty_sale":          {"交易中没有商品。", "The sale has no items."},
	"tender_short":        {"付款金额不足。", "The payments do not cover the total."},
	"change_not_cash":     {"只能用现金找零：请减少刷卡或电子支付金额。", "Change can only be given from cash: lower the card or wallet amount."},
	"refund_too_large":    {"退款金额超过了实付金额。", "The refund is more than was paid."},
	"return_too_many":     {"退货数量超过了已售且未退的数量。", "That is more than was sold and not yet returned."},
	"needs_manager":       {"需要主管授权：请主管输入 PIN。", "A manager must approve this: manager PIN please."},
	"not_manager":         {"该用户不是主管。", "That user is not a manager."},
	"bad_pin":             {"工号或 PIN 错误。", "Wrong user or PIN."},
	"locked_out":          {"PIN 错误次数过多，已暂时锁定。请稍后再试或联系主管。", "Too many wrong PINs: locked for a while. Try later or call a manager."},
	"pin_format":          {"PIN 必须是 4 到 12 位数字。", "The PIN must be 4 to 12 digits."},
	"shift_open":          {"已有一个班次在进行中。", "A shift is already open."},
	"no_shift":            {"当前没有开班。", "No shift is open."},
	"duplicate_key":       {"该结账请求已用于另一笔交易。", "This checkout request was already used for another sale."},
	"coupon_signature":    {"优惠券无效（签名不符）。", "The coupon is not valid (bad signature)."},
	"coupon_unknown_key":  {"优惠券来自本店不认识的签发方。", "The coupon was signed by a key this store does not know."},
	"coupon_expired":      {"优惠券已过期或尚未生效。", "The coupon has expired or is not valid yet."},
	"coupon_used":         {"优惠券已被使用。", "The coupon was already used."},
	"coupon_min_spend":    {"未达到优惠券的最低消费。", "The basket is below the coupon's minimum spend."},
	"coupon_not_eligible": {"优惠券不适用于这些商品。", "The coupon does not apply to these items."},
	"coupon_revoked":      {"优惠券已被总部作废。", "HQ has revoked this coupon."},
	"coupon_currency":     {"优惠券币种与本店不符。", "The coupon is for another currency."},
	"coupon_store":        {"优惠券不适用于本店。", "The coupon is not valid in this store."},
	"pickup_unknown":      {"没有这个取货码的订单。", "No pickup order with that code."},
	"pickup_handed":       {"该订单已经取走。", "This order was already handed over."},
	"pickup_cancelled":    {"该订单已被总部取消。", "HQ cancelled this order."},
	"pickup_lines":        {"交付的商品与订单不符。", "The items handed over do not match the order."},
	"pickup_other_store":  {"这是其他门店的取货码，请让顾客到下单的门店取货。", "This pickup code is for another store: the order waits there."},
	"points_member":       {"使用积分需要本店已知的会员：请先关联会员。", "Paying with points needs a member this store knows: attach the member first."},
	"points_balance":      {"会员积分不足。", "The member does not have that many points."},
	"points_cap":          {"已达到该会员离线可用积分上限，请待与总部同步后再用，或改用其他支付方式。", "This member's offline points limit is reached: wait until the store is back in touch with HQ, or pay another way."},
	"member_code":         {"会员码无效：最多 64 个字符，不能有空格。", "That member code is not valid: at most 64 characters, no spaces."},
	"idempotency_key":     {"结账请求缺少 Idempotency-Key。", "The checkout request needs an Idempotency-Key header."},
	"tender_kind":         {"付款方式只能是现金、银行卡或电子钱包。", "The payment must be cash, card or wallet."},
	"tender_ref":          {"请填写支付终端的参考号。", "Enter the payment terminal's reference."},
	"reason_required":     {"请填写原因。", "Enter a reason."},
	"drawer_failed":       {"钱箱未能打开：%v", "The cash drawer did not open: %v"},
	"invalid":             {"无法完成：请检查输入。", "This cannot be done: check what was entered."},
	"unavailable":         {"服务暂时不可用，请重试。", "Not available right now. Try again."},
	"internal":            {"系统错误，请重试；如仍失败请联系主管。", "System error. Try again, and call a supervisor if it persists."},
}

// message renders code's text in the API's locale.
func (a *API) message(code string, args ...any) string {
	m, ok := messages[code]
	if !ok {
		m = messages["internal"]
	}
	t := m[0]
	if a.cfg.Locale == "en" {
		t = m[1]
	}
	if strings.Contains(t, "%v") {
		if len(args) == 0 {
			t = strings.ReplaceAll(t, " %v", "")
			t = strings.ReplaceAll(t, "%v", "")
			return t
		}
		return fmt.Sprintf(t, args...)
	}
	return t
}
