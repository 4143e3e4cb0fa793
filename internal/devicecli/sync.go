package devicecli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// syncConflict is a record a push left holding a conflict.
type syncConflict struct {
	ID     string   `json:"id"`
	Fields []string `json:"fields"`
}

// syncRejection is a push item the server refused.
type syncRejection struct {
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// syncView is `sync --json`: the SDK's report, and the device's state after.
type syncView struct {
	Server            string          `json:"server"`
	OK                bool            `json:"ok"`
	Error             string          `json:"error,omitempty"`
	Batches           int             `json:"batches"`
	Pushed            int             `json:"pushed"`
	Applied           int             `json:"applied"`
	Unchanged         int             `json:"unchanged"`
	Conflicted        int             `json:"conflicted"`
	Conflicts         []syncConflict  `json:"conflicts"`
	Rejected          []syncRejection `json:"rejected"`
	Pulled            int             `json:"pulled"`
	Resynced          bool            `json:"resynced"`
	DirtyRecords      int             `json:"dirty_records"`
	PendingBatch      bool            `json:"pending_batch"`
	ConflictsOnDevice int             `json:"conflicts_on_device"`
}

func setupSync(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the report as JSON (also when the sync fails)")
	retries := fs.Int("retries", 2, "retries of a request after a network error, a 429 or a 5xx (0: none)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on the whole sync after this long")
	verbose := fs.Bool("v", false, "log the SDK's retries and decisions on stderr (never values nor the token)")
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *retries < 0 || *timeout <= 0 {
			return fmt.Errorf("--retries %d, --timeout %s: want retries ≥ 0 and a positive timeout", *retries, *timeout)
		}
		level := slog.LevelError
		if *verbose {
			level = slog.LevelInfo
		}
		logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		c, cl, err := openDevice(e, func(o *client.Options) {
			o.MaxRetries = *retries
			if *retries == 0 {
				o.MaxRetries = -1
			}
			o.Logger = logger
			o.HTTPClient = &http.Client{Timeout: *timeout}
		})
		if err != nil {
			return err
		}
		defer cl.Close()

		// Ctrl-C stops the sync cleanly: what was not acknowledged stays
		// on the device for the next one.
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		rep, syncErr := cl.Sync(ctx)

		v := syncView{Server: c.Server, OK: syncErr == nil, Batches: rep.Batches, Applied: rep.Applied, Unchanged: rep.Unchanged,
			Conflicted: rep.Conflicted, Conflicts: []syncConflict{}, Rejected: []syncRejection{}, Pulled: rep.Pulled, Resynced: rep.Resynced}
		v.Pushed = rep.Applied + rep.Unchanged + rep.Conflicted + len(rep.Rejected)
		for _, id := range rep.Conflicts {
			_, a := cl.Get(id)
			v.Conflicts = append(v.Conflicts, syncConflict{ID: id, Fields: nonNil(a.ConflictFields())})
		}
		for _, r := range rep.Rejected {
			v.Rejected = append(v.Rejected, syncRejection{ID: r.ID, Code: string(r.Code), Message: r.Message})
		}
		if n, pending, err := cl.Dirty(); err == nil {
			v.DirtyRecords, v.PendingBatch = n, pending
		}
		if list, err := cl.Conflicts(); err == nil {
			v.ConflictsOnDevice = len(list)
		}
		if syncErr != nil {
			syncErr = explainSyncError(ctx, syncErr, c.Server, *timeout)
			v.Error = syncErr.Error()
		}
		if *asJSON {
			if err := writeJSON(e.stdout, v); err != nil {
				return err
			}
		} else {
			printSync(e, &v)
		}
		return syncErr
	}
}

func printSync(e *env, v *syncView) {
	w := e.stdout
	if v.Pushed == 0 {
		fmt.Fprintln(w, "pushed     0 records")
	} else {
		fmt.Fprintf(w, "pushed     %d %s in %d %s: %d applied, %d unchanged, %d %s, %d rejected\n",
			v.Pushed, plural(v.Pushed, "record", "records"), v.Batches, plural(v.Batches, "batch", "batches"),
			v.Applied, v.Unchanged, v.Conflicted, plural(v.Conflicted, "conflict", "conflicts"), len(v.Rejected))
	}
	for _, c := range v.Conflicts {
		fmt.Fprintf(w, "conflict   %s  %s\n", c.ID, orDash(strings.Join(c.Fields, ", ")))
	}
	for _, r := range v.Rejected {
		fmt.Fprintf(w, "rejected   %s  %s: %s\n", r.ID, r.Code, r.Message)
	}
	fmt.Fprintf(w, "pulled     %d %s\n", v.Pulled, plural(v.Pulled, "record", "records"))
	if v.Resynced {
		fmt.Fprintln(w, "resynced   the server asked for a resync: pulled everything and pushed every record again")
	}
	fmt.Fprintf(w, "dirty      %d %s left to push\n", v.DirtyRecords, plural(v.DirtyRecords, "record", "records"))
	if v.PendingBatch {
		fmt.Fprintln(w, "pending    a batch awaits the server's answer; the next sync resends it")
	}
	if v.ConflictsOnDevice > 0 {
		fmt.Fprintf(w, "conflicts  %d %s on this device (fieldsync device list --conflicts)\n",
			v.ConflictsOnDevice, plural(v.ConflictsOnDevice, "record holds a conflict", "records hold a conflict"))
	}
	if v.OK {
		fmt.Fprintln(w, "ok")
	} else {
		fmt.Fprintln(w, "failed")
	}
}

// explainSyncError says what a failed sync means and what to do.
func explainSyncError(ctx context.Context, err error, server string, timeout time.Duration) error {
	const kept = "unsent changes stay on this device for the next sync"
	var se *client.StatusError
	var re *client.RetryError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s (--timeout); %s", timeout, kept)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted; %s", kept)
	case errors.As(err, &se):
		msg := fmt.Sprintf("%d %s", se.Status, se.Err)
		switch {
		case se.Status == http.StatusUnauthorized:
			return fmt.Errorf("the server refused the device's token on %s (%s): it may have been revoked; get a new one from the admin and enroll again; %s", se.Route, msg, kept)
		case se.Status == http.StatusForbidden:
			return fmt.Errorf("the server refused %s (%s); %s", se.Route, msg, kept)
		case se.Err != nil && se.Err.Code == sp.CodeResyncRequired:
			return fmt.Errorf("the server asked for a resync again while resyncing (%s): run sync again; %s", msg, kept)
		}
		return fmt.Errorf("the server answered %s on %s; %s", msg, se.Route, kept)
	case errors.As(err, &re):
		return fmt.Errorf("the server at %s stayed unreachable or overloaded through %d %s on %s (last: %v); %s",
			server, re.Attempts, plural(re.Attempts, "attempt", "attempts"), re.Route, unwrapURLError(re.Last), kept)
	}
	return fmt.Errorf("%w; %s", err, kept)
}

func setupStatus(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the status as JSON")
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		c, cl, err := openDevice(e, nil)
		if err != nil {
			return err
		}
		defer cl.Close()
		list, err := cl.List()
		if err != nil {
			return fmt.Errorf("read the device file: %w", err)
		}
		dirty, pending, err := cl.Dirty()
		if err != nil {
			return fmt.Errorf("read the device file: %w", err)
		}
		deleted, conflicts := 0, 0
		for _, s := range list {
			if s.Deleted {
				deleted++
			}
			if len(s.Conflicts) > 0 {
				conflicts++
			}
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]any{
				"dir": e.dir, "server": c.Server, "device": c.Device, "label": c.Label, "scopes": nonNil(c.Scopes),
				"enrolled_at": c.EnrolledAt, "records": len(list), "deleted": deleted, "conflicts": conflicts,
				"dirty_records": dirty, "pending_batch": pending,
			})
		}
		p := "no"
		if pending {
			p = "yes: a batch awaits the server's answer; the next sync resends it"
		}
		fmt.Fprintf(e.stdout, "dir        %s\nserver     %s\ndevice     %s\nlabel      %s\nscopes     %s\n"+
			"records    %d (%d deleted)\nconflicts  %d\ndirty      %d %s\npending    %s\n",
			e.dir, c.Server, c.Device, orDash(c.Label), orDash(strings.Join(c.Scopes, ", ")),
			len(list), deleted, conflicts, dirty, plural(dirty, "record", "records"), p)
		return nil
	}
}
