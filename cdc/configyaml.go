package cdc

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The config is decoded by walking the YAML tree beside the Go types,
// rather than by yaml.Decoder, so that every error names the setting's
// YAML path (tables.inventory.customers.ttl) instead of a Go type
// (cdc.Table) and a line number.

var durationType = reflect.TypeFor[time.Duration]()

// decodeNode decodes n into v (settable), path being n's YAML path ("" at
// the top).
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == 0 {
		return nil // an empty file
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return decodeNode(n.Content[0], v, path)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty setting keeps its default
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			return pathErr(path, "expected a duration such as 90s or 24h, got %s", kindName(n))
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return pathErr(path, "invalid duration %q (a Go duration such as 90s, 24h or 168h)", n.Value)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeNode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return pathErr(path, "expected a mapping of settings, got %s", kindName(n))
		}
		fields := yamlFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			idx, ok := fields[name]
			if !ok {
				return pathErr(path, "unknown field %q", name)
			}
			if seen[name] {
				return pathErr(path, "field %q is set twice", name)
			}
			seen[name] = true
			if err := decodeNode(n.Content[i+1], v.Field(idx), join(path, name)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return pathErr(path, "expected a mapping, got %s", kindName(n))
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			if v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key())).IsValid() {
				return pathErr(path, "%q is listed twice", name)
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(n.Content[i+1], elem, join(path, name)); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return pathErr(path, "expected a list such as [a, b], got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return pathErr(path, "expected %s, got %s", scalarName(v.Kind()), kindName(n))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return pathErr(path, "expected %s, got %q", scalarName(v.Kind()), n.Value)
	}
	return nil
}

// yamlFields maps a struct's YAML names to its field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// pathErr is an error about the setting at path (the file's top level
// when path is "").
func pathErr(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", path, msg)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func scalarName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a number"
}
