package agent

// DrawerReporter is an optional ability of a Hardware: it says whether a
// cash drawer is attached at all (devices.printer.drawer_on_cash). The
// API opens the drawer by itself after a cash sale, a cash refund or a
// shift's opening only when one is, so a terminal without a drawer shows
// no "drawer did not open" message for every cash sale. A Hardware
// without this method is taken to have one.
type DrawerReporter interface {
	HasDrawer() bool
}

// hasDrawer reports whether the API's hardware has a cash drawer.
func (a *API) hasDrawer() bool {
	if a.cfg.Hardware == nil {
		return false
	}
	if d, ok := a.cfg.Hardware.(DrawerReporter); ok {
		return d.HasDrawer()
	}
	return true
}
