package gateway

import (
	"encoding/json"
	"maps"
	"time"
)

// emit sends an audit event to every agent as one JSON line: {"time",
// "type", ...fields}. It never blocks the gateway: an agent that does not
// keep up loses events, and the loss is logged.
func (g *Gateway) emit(typ string, fields map[string]any) {
	ev := map[string]any{"time": g.now().UTC().Format(time.RFC3339Nano), "type": typ}
	maps.Copy(ev, fields)
	line, err := json.Marshal(ev)
	if err != nil {
		return
	}
	line = append(line, '\n')
	for _, c := range g.children {
		if c.events == nil {
			continue
		}
		select {
		case c.events <- line:
		default:
			g.log.Warn("audit event dropped: the agent does not keep up", "component", c.subject(), "type", typ)
		}
	}
}
