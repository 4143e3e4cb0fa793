package devicecli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

func setupNew(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	form := fs.String("form", "", "the record's form, [a-z0-9_-]{1,64} (required)")
	scope := fs.String("scope", "", "the record's scope (default: the device's scope, when it has one)")
	id := fs.String("id", "", "the record's id, a lowercase UUID (default: a new UUIDv7)")
	anyScope := fs.Bool("any-scope", false, "allow a scope the device was not given (to test the server's refusal)")
	return func(ctx context.Context, args []string) error {
		fields, err := parseFields(args)
		if err != nil {
			return err
		}
		switch {
		case *form == "":
			return errors.New("--form is required")
		case !sp.IsSlug(*form):
			return fmt.Errorf("--form %q: must match [a-z0-9_-]{1,64}", cutArg(*form))
		case *scope != "" && !sp.IsSlug(*scope):
			return fmt.Errorf("--scope %q: must match [a-z0-9_-]{1,64}", cutArg(*scope))
		case *id != "" && !sp.IsUUID(*id):
			return fmt.Errorf("--id %q: must be a lowercase UUID", cutArg(*id))
		}
		c, cl, err := openDevice(e, nil)
		if err != nil {
			return err
		}
		defer cl.Close()
		if *scope == "" {
			if len(c.Scopes) != 1 {
				return fmt.Errorf("--scope is required: the device has the scopes %s", strings.Join(c.Scopes, ", "))
			}
			*scope = c.Scopes[0]
		}
		if !*anyScope && !slices.Contains(c.Scopes, *scope) {
			return fmt.Errorf("--scope %q is not one of the device's scopes (%s); the server would refuse it (--any-scope to try anyway)",
				*scope, strings.Join(c.Scopes, ", "))
		}
		rid := *id
		if rid == "" {
			rid = client.NewID()
		} else if rec, _ := cl.Get(rid); rec != nil {
			return fmt.Errorf("the device already holds a record %s (use set to edit it)", rid)
		}
		if err := cl.Save(ctx, rid, *form, *scope, fields); err != nil {
			return saveError(err, rid)
		}
		fmt.Fprintln(e.stdout, rid)
		return nil
	}
}

func setupSet(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			return errors.New("usage: set ID FIELD=VALUE [FIELD=VALUE]")
		}
		fields, err := parseFields(args[1:])
		if err != nil {
			return err
		}
		_, cl, id, err := openRecord(e, args[0])
		if err != nil {
			return err
		}
		defer cl.Close()
		rec, a := cl.Get(id)
		if rec == nil {
			return notFound(id)
		}
		if err := cl.Save(ctx, id, "", "", fields); err != nil {
			return saveError(err, id)
		}
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		note := ""
		if a.Deleted {
			note = " (undeleted)"
		}
		fmt.Fprintf(e.stdout, "updated %s: %s%s\n", id, strings.Join(names, ", "), note)
		return nil
	}
}

func setupDelete(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return errors.New("usage: delete ID")
		}
		_, cl, id, err := openRecord(e, args[0])
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := cl.Delete(ctx, id); err != nil {
			return saveError(err, id)
		}
		fmt.Fprintf(e.stdout, "deleted %s\n", id)
		return nil
	}
}

// recordView is `show --json`.
type recordView struct {
	ID        string                      `json:"id"`
	Form      string                      `json:"form"`
	Scope     string                      `json:"scope"`
	Values    map[string]json.RawMessage  `json:"values"`
	Conflicts map[string][]sp.SiblingView `json:"conflicts"`
	Deleted   bool                        `json:"deleted"`
	Review    *client.Review              `json:"review"`
	Dirty     []string                    `json:"dirty"`
	Clock     sp.Clock                    `json:"clock"`
}

func setupShow(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the record as JSON")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return errors.New("usage: show ID [--json]")
		}
		c, cl, id, err := openRecord(e, args[0])
		if err != nil {
			return err
		}
		defer cl.Close()
		v, err := viewOf(cl, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, v)
		}
		printRecord(e, c.Device, v)
		return nil
	}
}

func viewOf(cl *client.Client, id string) (*recordView, error) {
	rec, _ := cl.Get(id)
	if rec == nil {
		return nil, notFound(id)
	}
	list, err := cl.List()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(list, func(s client.Summary) bool { return s.ID == id })
	if i < 0 {
		return nil, notFound(id)
	}
	s := list[i]
	v := &recordView{ID: s.ID, Form: s.Form, Scope: s.Scope, Values: s.Values, Conflicts: map[string][]sp.SiblingView{},
		Deleted: s.Deleted, Review: s.Review, Dirty: nonNil(s.Dirty), Clock: rec.Clock}
	for _, f := range s.Conflicts {
		sibs := rec.Fields[f]
		if len(sibs) == 0 {
			continue
		}
		out := make([]sp.SiblingView, 0, len(sibs))
		for _, sb := range sibs {
			out = append(out, sp.SiblingView{V: sb.Value, By: sb.By, N: sb.N, At: sb.At})
		}
		// The visible value (last writer wins) first, then the others.
		w := sp.Winner(sibs)
		sort.SliceStable(out, func(i, j int) bool {
			return out[i].By == w.By && out[i].N == w.N && !(out[j].By == w.By && out[j].N == w.N)
		})
		v.Conflicts[f] = out
	}
	return v, nil
}

func printRecord(e *env, self string, v *recordView) {
	w := e.stdout
	fmt.Fprintf(w, "record    %s\nform      %s\nscope     %s\n", v.ID, v.Form, v.Scope)
	status := []string{}
	if len(v.Conflicts) > 0 {
		status = append(status, "conflict")
	}
	if v.Deleted {
		status = append(status, "deleted")
	}
	if len(v.Dirty) > 0 {
		status = append(status, "dirty")
	}
	if len(status) == 0 {
		status = append(status, "ok")
	}
	fmt.Fprintf(w, "status    %s\n", strings.Join(status, ", "))
	fmt.Fprintf(w, "deleted   %t\n", v.Deleted)
	if v.Review != nil {
		fmt.Fprintf(w, "review    %s", v.Review.State)
		if v.Review.Note != "" {
			fmt.Fprintf(w, ": %s", display(mustJSON(v.Review.Note)))
		}
		if v.Review.By != "" {
			fmt.Fprintf(w, " (by %s)", v.Review.By)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "review    -")
	}
	fmt.Fprintf(w, "dirty     %s\n", orDash(strings.Join(v.Dirty, ", ")))
	fmt.Fprintln(w, "values")
	names := make([]string, 0, len(v.Values))
	for n := range v.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range names {
		mark := ""
		if _, ok := v.Conflicts[n]; ok {
			mark = "\t(conflict)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", n, display(v.Values[n]), mark)
	}
	tw.Flush()
	if len(v.Conflicts) == 0 {
		return
	}
	fmt.Fprintln(w, "conflicts")
	fields := make([]string, 0, len(v.Conflicts))
	for f := range v.Conflicts {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		fmt.Fprintf(w, "  %s\n", f)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for i, s := range v.Conflicts[f] {
			who := s.By
			if s.By == self {
				who += " (this device)"
			}
			shown := ""
			if i == 0 {
				shown = "  (shown)"
			}
			fmt.Fprintf(tw, "    %s\tby %s\tat %s%s\n", display(s.V), who, msTime(s.At), shown)
		}
		tw.Flush()
	}
}

// listItem is one record of `list --json`.
type listItem struct {
	ID        string                     `json:"id"`
	Form      string                     `json:"form"`
	Scope     string                     `json:"scope"`
	Values    map[string]json.RawMessage `json:"values"`
	Deleted   bool                       `json:"deleted"`
	Conflicts []string                   `json:"conflicts"`
	Dirty     []string                   `json:"dirty"`
	Review    *client.Review             `json:"review"`
	Flags     []string                   `json:"flags"`
}

func setupList(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	conflicts := fs.Bool("conflicts", false, "only the records holding a conflict")
	asJSON := fs.Bool("json", false, "print a JSON array of the records")
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		_, cl, err := openDevice(e, nil)
		if err != nil {
			return err
		}
		defer cl.Close()
		var list []client.Summary
		if *conflicts {
			list, err = cl.Conflicts()
		} else {
			list, err = cl.List()
		}
		if err != nil {
			return fmt.Errorf("read the device file: %w", err)
		}
		if *asJSON {
			out := make([]listItem, 0, len(list))
			for _, s := range list {
				out = append(out, listItem{ID: s.ID, Form: s.Form, Scope: s.Scope, Values: s.Values, Deleted: s.Deleted,
					Conflicts: nonNil(s.Conflicts), Dirty: nonNil(s.Dirty), Review: s.Review, Flags: flagsOf(s)})
			}
			return writeJSON(e.stdout, out)
		}
		if len(list) == 0 {
			if *conflicts {
				fmt.Fprintln(e.stderr, "no record holds a conflict")
			} else {
				fmt.Fprintln(e.stderr, "no records on this device")
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Form, s.Scope, orDash(strings.Join(flagsOf(s), ",")), summarize(s.Values))
		}
		return tw.Flush()
	}
}

// resolveID takes a full record id, or a prefix that one record has.
// openRecord opens the device and finds the record an argument names (an
// id or a unique prefix of one). The caller closes the client.
func openRecord(e *env, arg string) (*config, *client.Client, string, error) {
	c, cl, err := openDevice(e, nil)
	if err != nil {
		return nil, nil, "", err
	}
	id, err := resolveID(cl, arg)
	if err != nil {
		cl.Close()
		return nil, nil, "", err
	}
	return c, cl, id, nil
}

func resolveID(cl *client.Client, arg string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(arg))
	if sp.IsUUID(id) {
		return id, nil
	}
	if len(id) < 4 || strings.Trim(id, "0123456789abcdef-") != "" {
		return "", fmt.Errorf("%q is not a record id (a UUID, or at least its first 4 characters)", cutArg(arg))
	}
	list, err := cl.List()
	if err != nil {
		return "", fmt.Errorf("read the device file: %w", err)
	}
	var found []string
	for _, s := range list {
		if strings.HasPrefix(s.ID, id) {
			found = append(found, s.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", notFound(id)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d records start with %s (%s, ...): give more of the id", len(found), id, strings.Join(found[:2], ", "))
}

func notFound(id string) error {
	return fmt.Errorf("no record %s on this device (fieldsync device list shows them; new creates one)", id)
}

// saveError turns the SDK's save errors into messages for people.
func saveError(err error, id string) error {
	switch {
	case errors.Is(err, client.ErrInvalid):
		return fmt.Errorf("%s [%s]; nothing saved", sp.ErrorMessage(err), sp.ErrorCode(err))
	case errors.Is(err, client.ErrNotFound):
		return notFound(id)
	}
	return fmt.Errorf("save: %w", err)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
