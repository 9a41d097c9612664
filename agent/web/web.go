// Package web is the POS screen the cashier uses: plain HTML, CSS and
// JavaScript modules embedded in the agent binary, with no build step and
// nothing loaded from the network (the store's network may be closed).
// The agent's API serves it at /.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the UI's files, rooted at the static folder (index.html, app.js,
// style.css).
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder always exists
	}
	return sub
}
