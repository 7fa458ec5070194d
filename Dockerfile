# Quill's server as a container: `quill serve` on 0.0.0.0:8080 as a non-root user, the API key from the environment
# (QUILL_API_KEY), models from a volume at /models, the feedback file in /data, and a HEALTHCHECK on /health
# (503 while the server warms up, 200 once it serves). Build: podman build -t quill:0.1.0 .   (or docker build)
# Run:   podman run -p 8080:8080 -v ./models:/models:ro -e QUILL_API_KEY=change-me quill:0.1.0 \
#          serve --host 0.0.0.0 --port 8080 --model /models/stories15M.bin --tokenizer /models/tokenizer.bin
# The default command serves /models/model.gguf.

# 1. Build: publish the CLI for the image's architecture, precompiled (ReadyToRun), framework-dependent on the
#    ASP.NET Core runtime of the final image.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src
COPY Directory.Build.props Quill.slnx ./
COPY src/ src/
RUN case "${TARGETARCH:-amd64}" in amd64) rid=linux-x64 ;; arm64) rid=linux-arm64 ;; *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; esac \
 && dotnet publish src/Quill.Cli/Quill.Cli.csproj -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o /app \
 && rm -f /app/*.pdb /app/*.xml

# 2. Run: the ASP.NET Core runtime image (Debian), as its non-root "app" user.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /models /data && chown "$APP_UID" /data
USER $APP_UID
WORKDIR /data
VOLUME ["/models", "/data"]
EXPOSE 8080
# No curl in the runtime image: bash's /dev/tcp asks /health and looks for "status":"ok".
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -q '\"status\":\"ok\"' <&3"]
ENTRYPOINT ["/app/Quill.Cli"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--model", "/models/model.gguf", "--feedback", "/data/feedback.jsonl"]
