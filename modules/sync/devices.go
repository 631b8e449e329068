package sync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
)

// devicePrefix starts every device id.
const devicePrefix = "dev_"

// deviceView is a device in responses.
type deviceView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
}

func deviceViewOf(d device) deviceView {
	return deviceView{ID: d.ID, Name: d.Name, PublicKey: *encodeBase64(d.PublicKey), CreatedAt: d.CreatedAt}
}

// deviceList is the body of GET /v1/sync/devices.
type deviceList struct {
	Devices []deviceView `json:"devices"`
}

// deviceInput is the body of POST /v1/sync/devices.
type deviceInput struct {
	Name      *string `json:"name"`
	PublicKey *string `json:"public_key"`
}

// deletedDevice is the response body of DELETE /v1/sync/devices/{device_id}.
type deletedDevice struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// createDevice records a device with its name and public key, which the
// server stores as sent and never uses.
func (m *Module) createDevice(r *edge.Request) error {
	if err := m.requireWriter(r); err != nil {
		return err
	}
	var input deviceInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	name, err := deviceName(input.Name)
	if err != nil {
		return err
	}
	publicKey, err := decodeBase64("public_key", input.PublicKey)
	if err != nil {
		return err
	}
	if len(publicKey) > maxPublicKeyBytes {
		return edge.Validation("public_key", fmt.Sprintf("public_key must be at most %d bytes", maxPublicKeyBytes))
	}

	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		count, err := w.countDevices(ctx)
		if err != nil {
			return reply{}, err
		}
		if count >= maxDevicesPerUser {
			return reply{}, quotaExceeded(scopeDevices, int64(count), maxDevicesPerUser, 1)
		}

		d := device{ID: newDeviceID(), Name: name, PublicKey: publicKey, CreatedAt: w.now}
		if err := w.insertDevice(ctx, d); err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusCreated, data: deviceViewOf(d)}, nil
	})
}

// listDevices returns the caller's devices, oldest first.
func (m *Module) listDevices(r *edge.Request) error {
	if err := m.requireReader(r); err != nil {
		return err
	}

	devices, err := m.store.devices(r.Context(), r.Principal.UserID)
	if err != nil {
		return err
	}

	list := deviceList{Devices: make([]deviceView, 0, len(devices))}
	for _, d := range devices {
		list.Devices = append(list.Devices, deviceViewOf(d))
	}
	return m.readJSON(r, list)
}

// getDevice returns one of the caller's devices.
func (m *Module) getDevice(r *edge.Request) error {
	deviceID := r.Param("device_id")
	if err := validDeviceID(deviceID); err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}

	d, err := m.store.device(r.Context(), r.Principal.UserID, deviceID)
	if err != nil {
		return err
	}
	if d == nil {
		return edge.NotFound("no device with this id")
	}
	return m.readJSON(r, deviceViewOf(*d))
}

// deleteDevice removes one of the caller's devices.
func (m *Module) deleteDevice(r *edge.Request) error {
	deviceID := r.Param("device_id")
	if err := validDeviceID(deviceID); err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}

	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		found, err := w.deleteDevice(ctx, deviceID)
		if err != nil {
			return reply{}, err
		}
		if !found {
			return reply{}, edge.NotFound("no device with this id")
		}
		return reply{status: http.StatusOK, data: deletedDevice{ID: deviceID, Deleted: true}}, nil
	})
}

// deviceName checks a device name: 1 to 100 characters of UTF-8 without
// control characters, with surrounding spaces removed.
func deviceName(value *string) (string, error) {
	if value == nil {
		return "", edge.Validation("name", "name is required")
	}
	name := strings.TrimSpace(*value)
	if name == "" || utf8.RuneCountInString(name) > maxDeviceNameLength {
		return "", edge.Validation("name", fmt.Sprintf("name must be 1 to %d characters", maxDeviceNameLength))
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", edge.Validation("name", "name must not contain control characters")
	}
	return name, nil
}

// validDeviceID checks the form of a device id that the server gave out.
func validDeviceID(id string) error {
	hexPart, ok := strings.CutPrefix(id, devicePrefix)
	if _, err := hex.DecodeString(hexPart); !ok || err != nil || len(hexPart) != 32 {
		return edge.Validation("device_id", "device_id must be an id that POST /v1/sync/devices returned")
	}
	return nil
}

// newDeviceID returns dev_ and 16 random bytes in hex.
func newDeviceID() string {
	var random [16]byte
	_, _ = rand.Read(random[:]) // crypto/rand.Read never returns an error since Go 1.24.
	return devicePrefix + hex.EncodeToString(random[:])
}
