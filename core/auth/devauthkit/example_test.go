package devauthkit_test

import (
	"fmt"
	"log"
	"log/slog"
	"net/http"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
)

// The composition root's wiring when no WorkOS credentials are configured:
// mount the development AuthKit on the main loopback listener and point the
// real upstream client at it.
func Example() {
	workosClientID := "" // WORKOS_CLIENT_ID
	if !devauthkit.Enabled(workosClientID) {
		return // real WorkOS: authkit.New with the configured credentials
	}
	const listen = "127.0.0.1:8788"
	const public = "http://localhost:8788"

	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   listen,
		BaseURL:      public + devauthkit.MountPath,
		RedirectURIs: []string{public + "/callback"},
		Logger:       slog.New(slog.DiscardHandler), // production: the server's logger
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(devauthkit.MountPath+"/", http.StripPrefix(devauthkit.MountPath, dev))

	upstream, err := authkit.New(authkit.Config{
		ClientID:   dev.ClientID(),
		APIKey:     dev.APIKey(),
		APIBaseURL: dev.BaseURL(),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = upstream // handed to the auth package as its Upstream

	fmt.Println(dev.BaseURL())
	fmt.Println(dev.Issuer())
	// Output:
	// http://localhost:8788/_dev/authkit
	// http://localhost:8788/_dev/authkit/user_management/client_toolgate_dev
}
