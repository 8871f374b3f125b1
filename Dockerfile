# Release build of the `promotions` binary on a slim runtime image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin promotions

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/promotions /usr/local/bin/promotions
USER nobody
EXPOSE 8080
ENTRYPOINT ["promotions"]
CMD ["serve"]
