package hq

import _ "embed"

// dashboardHTML is the fleet dashboard: a static page whose script asks for
// the operator token, keeps it in localStorage and reads /api with it.
//
//go:embed dashboard.html
var dashboardHTML []byte
