"""The gRPC face of the ledger: parse requests, call the application, render replies."""
