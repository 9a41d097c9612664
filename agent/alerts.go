package agent

// Shelf alert kinds: the same words as devices/shelf's event kinds and
// wire.ShelfAlert's.
const (
	AlertLowStock        = "low_stock"
	AlertLowStockCleared = "low_stock_cleared"
	AlertShrink          = "shrink"
	AlertAmbiguous       = "ambiguous"
	AlertSensorOffline   = "sensor_offline"
	AlertSensorOnline    = "sensor_online"
)

// maxAlerts is how many alerts the status bar keeps.
const maxAlerts = 50

// alertClears maps a recovery kind to the condition it ends.
var alertClears = map[string]string{AlertLowStockCleared: AlertLowStock, AlertSensorOnline: AlertSensorOffline}

// noteAlert updates the status bar's list with al:
//   - a recovery (low_stock_cleared, sensor_online) removes the alert of
//     the condition it ends on the same shelf slot, and is not listed
//     itself: the condition is over;
//   - a standing condition (low_stock, sensor_offline, ambiguous)
//     replaces an earlier one of the same kind on the same slot, so the
//     list shows each slot's latest count once;
//   - every shrink is listed: each is a loss someone should look at.
//
// The newest maxAlerts are kept. HQ gets every alert, recoveries
// included, through the outbox (RaiseAlert).
func (a *Agent) noteAlert(al Alert) {
	a.alertsMu.Lock()
	defer a.alertsMu.Unlock()
	same := func(o Alert, kind string) bool {
		return o.Kind == kind && o.Shelf == al.Shelf && o.Slot == al.Slot
	}
	drop := al.Kind
	if c := alertClears[al.Kind]; c != "" {
		drop = c
	} else if al.Kind == AlertShrink {
		drop = ""
	}
	if drop != "" {
		kept := a.alerts[:0]
		for _, o := range a.alerts {
			if !same(o, drop) {
				kept = append(kept, o)
			}
		}
		clear(a.alerts[len(kept):]) // no stale copies behind the slice
		a.alerts = kept
	}
	if alertClears[al.Kind] != "" {
		return
	}
	a.alerts = append(a.alerts, al)
	if len(a.alerts) > maxAlerts {
		a.alerts = append([]Alert(nil), a.alerts[len(a.alerts)-maxAlerts:]...)
	}
}
