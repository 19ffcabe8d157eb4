package gateway

import (
	"encoding/json"
	"maps"
	"time"
)

// emit records an audit event in the audit log and sends it to every
// agent as one JSON line: {"time", "type", ...fields}. It never blocks the
// gateway: an agent that does not keep up loses events, and the loss is
// logged; the audit log's queue is bounded (see auditTrail).
func (g *Gateway) emit(typ string, fields map[string]any) {
	if g.audit == nil && !g.hasAgents {
		return // nobody to tell: no event is built on the request path
	}
	ev := map[string]any{"time": g.now().UTC().Format(time.RFC3339Nano), "type": typ}
	maps.Copy(ev, fields)
	g.audit.record(g, ev)
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
