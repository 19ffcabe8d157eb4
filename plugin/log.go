package plugin

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogTo returns an hclog.Logger, as go-plugin wants one, that logs each
// entry through l at the matching level with its fields as attributes.
func hclogTo(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        "go-plugin",
		Level:       hclog.Debug,
		Output:      slogWriter{l},
		JSONFormat:  true,
		DisableTime: true,
	})
}

// slogWriter receives hclog's JSON lines, one per Write.
type slogWriter struct{ l *slog.Logger }

var slogLevels = map[hclog.Level]slog.Level{
	hclog.Trace: slog.LevelDebug - 4,
	hclog.Debug: slog.LevelDebug,
	hclog.Info:  slog.LevelInfo,
	hclog.Warn:  slog.LevelWarn,
	hclog.Error: slog.LevelError,
}

func (w slogWriter) Write(p []byte) (int, error) {
	return w.LevelWrite(hclog.Info, p)
}

// LevelWrite implements hclog.LevelWriter.
func (w slogWriter) LevelWrite(level hclog.Level, p []byte) (int, error) {
	ctx := context.Background()
	lvl, ok := slogLevels[level]
	if !ok {
		lvl = slog.LevelInfo
	}
	if !w.l.Enabled(ctx, lvl) {
		return len(p), nil
	}
	var entry map[string]any
	if err := json.Unmarshal(p, &entry); err != nil {
		w.l.Log(ctx, lvl, strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := entry["@message"].(string)
	var attrs []any
	for _, k := range slices.Sorted(maps.Keys(entry)) {
		if k == "@module" {
			attrs = append(attrs, "module", entry[k])
		} else if !strings.HasPrefix(k, "@") {
			attrs = append(attrs, k, entry[k])
		}
	}
	w.l.Log(ctx, lvl, msg, attrs...)
	return len(p), nil
}
