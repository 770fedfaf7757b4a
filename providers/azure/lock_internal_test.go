package azure

import (
	"errors"
	"testing"

	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/graphkeep/graphkeep/blob"
)

// Compliance maps to a Locked immutability policy (no one shortens or
// lifts it), governance to Unlocked; anything else is refused.
func TestAzureModes(t *testing.T) {
	for mode, want := range map[string]azblobblob.ImmutabilityPolicySetting{
		blob.Compliance: azblobblob.ImmutabilityPolicySettingLocked,
		blob.Governance: azblobblob.ImmutabilityPolicySettingUnlocked,
	} {
		if got, err := azureMode(mode); err != nil || got != want {
			t.Errorf("%s: %q %v", mode, got, err)
		}
	}
	if _, err := azureMode("forever"); !errors.Is(err, blob.ErrInvalid) {
		t.Errorf("an unknown mode: %v", err)
	}
}
