package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteTable writes the report as an aligned table for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	m, s := r.Machine, r.Settings
	fmt.Fprintf(&b, "fieldsync bench  %s  %s/%s  %d CPU", r.Date.Format("2006-01-02 15:04 UTC"), m.GOOS, m.GOARCH, m.NumCPU)
	if m.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", m.CPUModel)
	}
	if m.MemBytes > 0 {
		fmt.Fprintf(&b, "  %s RAM", fmtBytes(float64(m.MemBytes)))
	}
	fmt.Fprintf(&b, "  %s", m.GoVersion)
	if m.FileSystem != "" {
		fmt.Fprintf(&b, "  data on %s", m.FileSystem)
	}
	if r.LoadStart >= 0 && r.LoadEnd >= 0 {
		fmt.Fprintf(&b, "  load %.1f → %.1f", r.LoadStart, r.LoadEnd)
	}
	b.WriteString("\n")
	ver := s.ServerVersion
	if ver == "" {
		ver = "fieldsync"
	}
	fmt.Fprintf(&b, "server %s; %s records of ~%s B (%s as JSON), %d a batch, pull limit %s",
		ver, group(float64(s.Records)), group(float64(r.Memory.DatasetBytes)/float64(max(s.Records, 1))),
		fmtBytes(float64(r.Memory.DatasetBytes)), s.BatchSize, group(float64(s.PullLimit)))
	if s.Quick {
		b.WriteString("  [quick]")
	}
	b.WriteString("\n\n")

	const lw, vw, rw = 44, 16, 16
	fmt.Fprintf(&b, "%-*s %*s %*s  %7s  %s\n", lw, "figure", vw, "measured", rw, "raw limit", "÷ raw", "raw is")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", lw+vw+rw+10+34))
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "%-*s %*s %*s  %7s  %s\n", lw, f.Label, vw, fmtValue(f.Value, f.Unit), rw, fmtValue(f.Raw, f.Unit), fmtRatio(f.Ratio), f.RawLabel)
	}
	b.WriteString("÷ raw = measured / raw: for records/s the share of the raw limit reached; for times and bytes how many times the raw.\n\n")

	if raw := r.Raw; raw != nil {
		fmt.Fprintf(&b, "raw limit of this machine, same bytes, no HTTP, no merge, no index:\n")
		row := func(label, value string) { fmt.Fprintf(&b, "  %-*s %*s\n", lw-2, label, vw, value) }
		row(fmt.Sprintf("encoding/json → map, %d goroutines", raw.DecodeWorkers), fmtValue(raw.DecodeMapRPS, "records/s"))
		row(fmt.Sprintf("encoding/json → structs, %d goroutines", raw.DecodeWorkers), fmtValue(raw.DecodeStructRPS, "records/s"))
		row("  CPU a record", fmtValue(raw.DecodeStructCPUUs, "µs"))
		row(fmt.Sprintf("bbolt put, %d a tx + fsync, 1 writer", s.BatchSize), fmtValue(raw.BoltPutRPS, "records/s"))
		row("  one such commit, p50", fmtValue(raw.BoltCommitP50Ms, "ms"))
		row(fmt.Sprintf("decode + bbolt put, %d workers", raw.PushWorkers), fmtValue(raw.PushRPS, "records/s"))
		row("  CPU a record", fmtValue(raw.PushCPUUs, "µs"))
		row(fmt.Sprintf("bbolt read → pages of %s", group(float64(s.PullLimit))), fmtValue(raw.ScanRPS, "records/s"))
		row("  → zstd (fastest)", fmtValue(raw.ScanZstdRPS, "records/s"))
		row("  → gzip (default level)", fmtValue(raw.ScanGzipRPS, "records/s"))
		row(fmt.Sprintf("one device's sync alone (%d up, %s down)", s.SyncPush, group(float64(s.PullLimit))), fmtValue(raw.SyncOneMs, "ms"))
		b.WriteString("\n")
	}

	b.WriteString("details:\n")
	for _, p := range []*PushResult{r.Push8, r.Push64} {
		if p == nil {
			continue
		}
		fmt.Fprintf(&b, "  push %2d devices: %s records in %s batches, %.1f s; a batch p50 %s, p99 %s, max %s\n",
			p.Devices, group(float64(p.Records)), group(float64(p.Batches)), p.Seconds,
			fmtValue(p.BatchP50Ms, "ms"), fmtValue(p.BatchP99Ms, "ms"), fmtValue(p.BatchMaxMs, "ms"))
		fmt.Fprintf(&b, "                   %s; a record: %s server CPU, %s written\n", fmtCPU(p.usage, p.Seconds),
			fmtValue(p.ServerCPU/float64(p.Records)*1e6, "µs"), fmtBytes(float64(p.ServerWrite)/float64(p.Records)))
	}
	for _, p := range r.Pulls {
		fmt.Fprintf(&b, "  pull %-8s: %s pages, %.1f s; %s JSON, %s bodies, %s on the wire; %s\n",
			p.Encoding, group(float64(p.Pages)), p.Seconds,
			fmtBytes(float64(p.JSONBytes)), fmtBytes(float64(p.BodyBytes)), fmtBytes(float64(p.WireBytes)), fmtCPU(p.usage, p.Seconds))
	}
	if y := r.Sync; y != nil {
		fmt.Fprintf(&b, "  sync: %s devices (%s from the start, %s from a cursor), at most %s in flight, %.1f s (raw, back to back: %.1f s);\n",
			group(float64(y.Devices)), group(float64(y.FromStart)), group(float64(y.FromCursor)), group(float64(y.MaxInFlight)), y.Seconds, y.RawBackToBackS)
		fmt.Fprintf(&b, "        %s;\n", fmtCPU(y.usage, y.Seconds))
		fmt.Fprintf(&b, "        push p50 %s, p99 %s; pull p50 %s, p99 %s; %s pushed, %s pulled, %s read (Accept-Encoding: %s)\n",
			fmtValue(y.PushP50Ms, "ms"), fmtValue(y.PushP99Ms, "ms"), fmtValue(y.PullP50Ms, "ms"), fmtValue(y.PullP99Ms, "ms"),
			group(float64(y.RecordsPushed)), group(float64(y.RecordsPulled)), fmtBytes(float64(y.WireBytes)), y.Encoding)
	}
	mem := r.Memory
	fmt.Fprintf(&b, "  server memory: peak %s after ingest + pulls; resident then %s = %s private (heap, stacks) + %s of mapped database file;\n",
		fmtBytes(float64(mem.PeakRSS)), fmtBytes(float64(mem.RSSAfterPull)), fmtBytes(float64(mem.RSSAnon)), fmtBytes(float64(mem.RSSFile)))
	fmt.Fprintf(&b, "                 peak %s after the sync; %s data dir\n", fmtBytes(float64(mem.PeakRSSAfterSync)), fmtBytes(float64(mem.DataDirBytes)))
	fmt.Fprintf(&b, "  second server, ingest from 64 devices: peak %s\n", fmtBytes(float64(mem.PeakRSSPush64)))
	fmt.Fprintf(&b, "  run took %.0f s\n", r.Seconds)
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtCPU writes the CPU the server and the generator used over wall
// seconds.
func fmtCPU(u usage, wall float64) string {
	if wall <= 0 {
		return ""
	}
	out := fmt.Sprintf("server CPU %.1f s (%.1f cores), waiting for a CPU %.1f s; generator CPU %.1f s", u.ServerCPU, u.ServerCPU/wall, u.ServerWait, u.ClientCPU)
	if u.ServerWrite > 0 {
		out += ", server wrote " + fmtBytes(float64(u.ServerWrite)) + " to disk"
	}
	return out
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "records/s":
		return group(v) + " rec/s"
	case "bytes":
		return fmtBytes(v)
	case "µs":
		return group(v) + " µs"
	case "ms":
		if v >= 100 {
			return group(v) + " ms"
		}
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}

func fmtRatio(r float64) string {
	switch {
	case r == 0:
		return "-"
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

// fmtBytes writes a size in decimal megabytes (or kB, GB).
func fmtBytes(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + " GB"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + " MB"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " kB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " B"
}

// group writes a number rounded to a whole with thousands separators.
func group(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
