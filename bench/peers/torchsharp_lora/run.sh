#!/bin/bash
# PyTorch 2.10 (libtorch through TorchSharp 0.107) LoRA-step peer for `quill bench lora`: the same step as
# ../torch_lora_train.py. Takes that script's options; prints one JSON line with tokens_per_s.
# TorchSharp's native library needs a newer libstdc++ than Debian 12's: the first run lets the shared training peer's
# launcher (shared/peers/torchsharp/run.sh, found via $QUILL_PEERS or above this folder) unpack Debian 13's loader and
# libraries into its work folder, then builds this project there and runs it with them. Nothing on the system changes.
set -e
SRC=$(cd "$(dirname "$0")" && pwd)
WORK=${QUILL_TORCHSHARP_WORK:-/tmp/quill-torchsharp-peer}
L=$WORK/sysroot/usr/lib/x86_64-linux-gnu
if [[ ! -f $L/libstdc++.so.6 || ! -x $WORK/dotnet/dotnet ]]; then
  SHARED=${QUILL_PEERS:-}
  if [[ -z $SHARED ]]; then
    d=$SRC; while [[ $d != / && ! -f $d/shared/peers/torchsharp/run.sh ]]; do d=$(dirname "$d"); done
    SHARED=$d/shared/peers
  fi
  [[ -f $SHARED/torchsharp/run.sh ]] || { echo "torchsharp/run.sh not found (set QUILL_PEERS)" >&2; exit 2; }
  bash "$SHARED/torchsharp/run.sh" shakespeare-char 1 1 1 >/dev/null
fi
B=$WORK/lora-build
if [[ ! -f $B/bin/Release/net10.0/peer.dll || $SRC/Program.cs -nt $B/bin/Release/net10.0/peer.dll ]]; then
  mkdir -p $B && cp $SRC/Program.cs $SRC/peer.csproj $B/
  (cd $B && dotnet build -c Release -v q >/dev/null)
fi
N=$B/bin/Release/net10.0/runtimes/linux-x64/native
exec env LD_LIBRARY_PATH=$N:$L:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu DOTNET_ROOT=$WORK/dotnet \
  $WORK/dotnet/dotnet $B/bin/Release/net10.0/peer.dll "$@"
