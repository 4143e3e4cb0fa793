package devicecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// Files in --dir.
const (
	configFile = "device.json"
	dbFile     = "device.db"
)

// config is the device's enrollment, saved by enroll in DIR/device.json
// with mode 0600. Token is never printed nor put in an error message.
type config struct {
	Server     string   `json:"server"`
	Device     string   `json:"device"`
	Token      string   `json:"token"`
	Label      string   `json:"label,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	AppVersion string   `json:"app_version,omitempty"`
	Encoding   string   `json:"encoding,omitempty"`
	EnrolledAt string   `json:"enrolled_at,omitempty"`
}

func configPath(dir string) string { return filepath.Join(dir, configFile) }
func dbPath(dir string) string     { return filepath.Join(dir, dbFile) }

// errNotEnrolled is returned by loadConfig when DIR holds no enrollment.
var errNotEnrolled = errors.New("not enrolled")

// loadConfig reads DIR/device.json. It warns on w when the file is
// readable by others: it holds the token.
func loadConfig(e *env) (*config, error) {
	path := configPath(e.dir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run `fieldsync device enroll --dir %s --server URL --device ID --token TOKEN` first",
			errNotEnrolled, e.dir, configFile, e.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read the enrollment: %w", err)
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s is not a device enrollment (%v); enroll again", path, err)
	}
	if c.Server == "" || c.Device == "" {
		return nil, fmt.Errorf("%s lacks the server or the device id; enroll again", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(e.stderr, "warning: %s holds the device's token but has mode %04o; chmod 600 it\n", path, fi.Mode().Perm())
	}
	return &c, nil
}

// saveConfig writes DIR/device.json atomically with mode 0600, creating
// DIR (mode 0700) if needed.
func saveConfig(dir string, c *config) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".device-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), configPath(dir))
}

// clientOptions are the SDK's options for an enrolled device.
func (c *config) clientOptions() client.Options {
	enc := c.Encoding
	if enc == "none" {
		enc = client.EncodingNone
	}
	return client.Options{ServerURL: c.Server, Token: c.Token, Device: c.Device, AppVersion: c.AppVersion, Encoding: enc}
}

// openDevice loads the enrollment and opens the device file.
func openDevice(e *env, opt func(*client.Options)) (*config, *client.Client, error) {
	c, err := loadConfig(e)
	if err != nil {
		return nil, nil, err
	}
	o := c.clientOptions()
	if opt != nil {
		opt(&o)
	}
	cl, err := openClient(e.dir, o)
	if err != nil {
		return nil, nil, err
	}
	return c, cl, nil
}

// openClient opens the device file with clear errors for the usual cases.
func openClient(dir string, o client.Options) (*client.Client, error) {
	cl, err := client.Open(dbPath(dir), o)
	switch {
	case err == nil:
		return cl, nil
	case errors.Is(err, client.ErrInUse):
		return nil, fmt.Errorf("the device file %s is in use by another command (a sync still running?); try again", dbPath(dir))
	case errors.Is(err, client.ErrOtherDevice):
		return nil, fmt.Errorf("the device file %s was made for another device than %s; use another --dir", dbPath(dir), o.Device)
	}
	return nil, fmt.Errorf("open the device file: %w", err)
}

func nowStamp() string { return sp.Timestamp(time.Now()) }
