package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/latchkey/latchkey/client"
)

// authFileHeader is the comment Prefect writes at the top of auth.toml.
const authFileHeader = "# This file is auto-generated and should not be manually edited\n" +
	"# Update the Prefect config or use the CLI to login instead\n\n"

// slugify and serverSlug are the client package's Slugify and ServerSlug:
// the agent finds auth.toml's sections the same way.
func slugify(s string) string { return client.Slugify(s) }

func serverSlug(server string) string { return client.ServerSlug(server) }

// tomlDoc is a decoded TOML file that remembers the order of its top-level
// keys, so that rewriting it keeps other servers' sections where they were.
type tomlDoc struct {
	order []string
	data  map[string]any
}

func readTOMLDoc(path string) (*tomlDoc, error) {
	doc := &tomlDoc{data: map[string]any{}}
	text, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	md, err := toml.Decode(string(text), &doc.data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	for _, k := range md.Keys() {
		if len(k) == 1 {
			doc.order = append(doc.order, k[0])
		}
	}
	return doc, nil
}

// setTable replaces a top-level table, keeping its position.
func (d *tomlDoc) setTable(name string, values map[string]any) {
	if _, ok := d.data[name]; !ok {
		d.order = append(d.order, name)
	}
	d.data[name] = values
}

// encode writes the document as Python's toml.dumps would: top-level values
// first, then each table, a blank line between tables. Tables keep their
// order; BurntSushi writes the keys inside a table sorted.
func (d *tomlDoc) encode() ([]byte, error) {
	var out bytes.Buffer
	plain := map[string]any{}
	var tables []string
	for _, k := range d.order {
		if _, ok := d.data[k].(map[string]any); ok {
			tables = append(tables, k)
		} else {
			plain[k] = d.data[k]
		}
	}
	enc := func(v any) error {
		e := toml.NewEncoder(&out)
		e.Indent = ""
		return e.Encode(v)
	}
	if len(plain) > 0 {
		if err := enc(plain); err != nil {
			return nil, err
		}
	}
	for _, name := range tables {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n\n")) {
			out.WriteByte('\n')
		}
		if err := enc(map[string]any{name: d.data[name]}); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, fsynced, renamed over path. The file gets mode perm; missing
// directories are created with 0700.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// saveAuth is Client.save_auth_to_disk: it rewrites the whole file with the
// header, updating this server's section and keeping the others. An empty
// tenant is left out (Python drops None), which every Prefect 1.x version
// reads as "no tenant".
func saveAuth(path, slug string, a client.SavedAuth) error {
	doc, err := readTOMLDoc(path)
	if err != nil {
		return err
	}
	section := map[string]any{"api_key": a.APIKey}
	if a.TenantID != "" {
		section["tenant_id"] = a.TenantID
	}
	doc.setTable(slug, section)
	body, err := doc.encode()
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append([]byte(authFileHeader), body...), 0o600)
}

// tokenSettings is 0.15's settings.toml for a server: api_token and
// active_tenant_id.
type tokenSettings struct {
	path string
	doc  *tomlDoc
}

func loadTokenSettings(path string) (*tokenSettings, error) {
	doc, err := readTOMLDoc(path)
	if err != nil {
		return nil, err
	}
	return &tokenSettings{path: path, doc: doc}, nil
}

func (s *tokenSettings) get(key string) string {
	v, _ := s.doc.data[key].(string)
	return v
}

// set sets key, or removes it when value is "" (Python's None).
func (s *tokenSettings) set(key, value string) {
	if value == "" {
		delete(s.doc.data, key)
		for i, k := range s.doc.order {
			if k == key {
				s.doc.order = append(s.doc.order[:i], s.doc.order[i+1:]...)
				break
			}
		}
		return
	}
	if _, ok := s.doc.data[key]; !ok {
		s.doc.order = append(s.doc.order, key)
	}
	s.doc.data[key] = value
}

// clear empties the settings (Client._save_local_settings({})).
func (s *tokenSettings) clear() { s.doc = &tomlDoc{data: map[string]any{}} }

func (s *tokenSettings) save() error {
	body, err := s.doc.encode()
	if err != nil {
		return fmt.Errorf("encode %s: %w", s.path, err)
	}
	return writeFileAtomic(s.path, body, 0o600)
}
