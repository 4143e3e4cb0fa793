package devicecli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// DefaultAppVersion is sent as X-App-Version unless enroll says otherwise.
const DefaultAppVersion = "fieldsync-device-cli"

// enrollTimeout bounds each of enroll's two requests.
const enrollTimeout = 15 * time.Second

// whoami is the answer of GET /v1/whoami.
type whoami struct {
	ID     string   `json:"id"`
	Role   string   `json:"role"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func setupEnroll(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	server := fs.String("server", "", "the server's base URL, e.g. https://sync.example.org (required)")
	device := fs.String("device", "", "the device id the admin got from POST /v1/admin/devices (default: the token's)")
	token := fs.String("token", "", "the device's token (default: $"+EnvToken+"); stored in DIR/device.json, never printed")
	appVersion := fs.String("app-version", DefaultAppVersion, "sent to the server as X-App-Version")
	encoding := fs.String("encoding", client.EncodingZstd, "compression of pushes: zstd, gzip or none")
	asJSON := fs.Bool("json", false, "print the enrollment (without the token) as JSON")
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *token == "" {
			*token = os.Getenv(EnvToken)
		}
		switch {
		case *server == "":
			return errors.New("--server is required")
		case *token == "":
			return errors.New("--token is required (or $" + EnvToken + ")")
		}
		base, err := checkServerURL(*server)
		if err != nil {
			return err
		}
		dev := strings.ToLower(strings.TrimSpace(*device))
		if dev != "" && !sp.IsUUID(dev) {
			return fmt.Errorf("--device %q is not a device id (a UUID)", cutArg(*device))
		}
		switch *encoding {
		case client.EncodingZstd, client.EncodingGzip, "none":
		default:
			return fmt.Errorf("--encoding %q: use zstd, gzip or none", cutArg(*encoding))
		}
		old, err := loadConfig(e)
		if err != nil && !errors.Is(err, errNotEnrolled) {
			return err
		}
		if old != nil && dev != "" && old.Device != dev {
			return fmt.Errorf("%s is enrolled as device %s, not %s: use another --dir (or remove %s)", e.dir, old.Device, dev, e.dir)
		}

		hc := &http.Client{Timeout: enrollTimeout}
		if err := checkHealth(ctx, hc, base); err != nil {
			return err
		}
		who, err := checkWhoami(ctx, hc, base, *token, *appVersion)
		if err != nil {
			return err
		}
		switch {
		case who.Role != "device":
			return fmt.Errorf("the token belongs to a %s account (%q), not to a device: ask the admin for a device (POST /v1/admin/devices)", who.Role, who.Name)
		case !sp.IsUUID(who.ID):
			return fmt.Errorf("the server says the token's device id is %q, which is not a UUID", cutArg(who.ID))
		case dev != "" && who.ID != dev:
			return fmt.Errorf("the token is device %s's, not %s's: check --device and --token", who.ID, dev)
		case old != nil && old.Device != who.ID:
			return fmt.Errorf("%s is enrolled as device %s, and the token is device %s's: use another --dir", e.dir, old.Device, who.ID)
		}

		c := &config{Server: base, Device: who.ID, Token: *token, Label: who.Name, Scopes: who.Scopes,
			AppVersion: *appVersion, Encoding: *encoding, EnrolledAt: nowStamp()}
		if err := os.MkdirAll(e.dir, 0o700); err != nil {
			return err
		}
		cl, err := openClient(e.dir, c.clientOptions()) // creates the device file, and checks it is this device's
		if err != nil {
			return err
		}
		if err := cl.Close(); err != nil {
			return err
		}
		if err := saveConfig(e.dir, c); err != nil {
			return fmt.Errorf("save the enrollment: %w", err)
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]any{"server": c.Server, "device": c.Device, "label": c.Label,
				"scopes": nonNil(c.Scopes), "dir": e.dir})
		}
		fmt.Fprintf(e.stdout, "enrolled  %s\nlabel     %s\nscopes    %s\nserver    %s\ndir       %s (token in %s, mode 0600)\n",
			c.Device, c.Label, strings.Join(c.Scopes, ", "), c.Server, e.dir, configFile)
		return nil
	}
}

// checkServerURL returns the server's base URL without a trailing slash.
func checkServerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q is not an http(s) URL such as https://sync.example.org", cutArg(s))
	}
	if u.User != nil {
		return "", errors.New("--server must not hold a user or password; the device authenticates with --token")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: give the base URL only, without ? or #", cutArg(s))
	}
	return strings.TrimRight(s, "/"), nil
}

func checkHealth(ctx context.Context, hc *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the server at %s does not answer: %v", base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server at %s answers /healthz with %s: is it a fieldsync server, and is it up?", base, resp.Status)
	}
	return nil
}

func checkWhoami(ctx context.Context, hc *http.Client, base, token, appVersion string) (*whoami, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/whoami", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if appVersion != "" {
		req.Header.Set(sp.HeaderAppVersion, appVersion)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/whoami: %v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET /v1/whoami: reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := serverError(resp.StatusCode, body)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return nil, fmt.Errorf("the server refused the token (%s): check --token; the admin sees a device's token once, when creating it, and may have revoked it", msg)
		case http.StatusNotFound:
			return nil, fmt.Errorf("the server does not know GET /v1/whoami (%s): it is not a fieldsync server, or too old", msg)
		case http.StatusTooManyRequests:
			return nil, fmt.Errorf("the server is rate-limiting this token (%s): try again shortly", msg)
		}
		return nil, fmt.Errorf("GET /v1/whoami: %s", msg)
	}
	var who whoami
	if err := json.Unmarshal(body, &who); err != nil {
		return nil, fmt.Errorf("GET /v1/whoami: the answer is not the account JSON (%v)", err)
	}
	return &who, nil
}

// serverError is an error answer as a message: "401 unauthorized: ...".
func serverError(status int, body []byte) string {
	var eb sp.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return fmt.Sprintf("%d %s: %s", status, eb.Error.Code, eb.Error.Message)
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

// unwrapURLError drops the *url.Error wrapper's method and URL, which the
// message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
