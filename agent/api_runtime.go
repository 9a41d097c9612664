package agent

import "net/http"

// ServeAPI returns an Options.APIHandler that serves the POS API and UI
// (NewAPI, agent/web) over the running agent: the ledger, the UI hub and
// the status come from the agent; cfg gives the rest (Hardware, and
// anything to override). An unset Locale or SessionTTL is the agent's
// Options', an unset Logger the agent's. Every command that runs an agent
// with its screen (pos-agent run, pos-demo) builds it here.
//
// The API's event streams end when the agent's HTTP server shuts down
// (the hub closes), so nothing needs closing besides the agent.
func ServeAPI(cfg APIConfig) func(a *Agent) (http.Handler, error) {
	return func(a *Agent) (http.Handler, error) {
		c := cfg
		c.Ledger, c.Hub, c.Status = a.Ledger(), a.Hub(), a
		if c.Locale == "" {
			c.Locale = a.opts.Locale
		}
		if c.SessionTTL <= 0 {
			c.SessionTTL = a.opts.SessionTTL
		}
		if c.Logger == nil {
			c.Logger = a.Logger()
		}
		api, err := NewAPI(c)
		if err != nil {
			return nil, err
		}
		return api.Handler(), nil
	}
}
