module github.com/docket-go/docket

go 1.26.0

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
	google.golang.org/protobuf v1.36.12
)

require github.com/stretchr/testify v1.11.1 // indirect
