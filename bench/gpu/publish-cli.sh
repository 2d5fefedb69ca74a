#!/usr/bin/env bash
# Packs a self-contained `mome` CLI for the GPU machine (which has no dotnet): a linux-x64
# publish with the .NET runtime inside, xz-compressed to build/gpu-cli.tar.xz (about 50 MB, under
# the device tool's 64 MiB carry). Then: run bench/gpu/run.sh with carry ["build/gpu-cli.tar.xz"];
# its ILGPU step unpacks it and runs the ILGPU engine on the CUDA accelerator beside the native one.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf build/gpu-cli build/gpu-cli.tar.xz
dotnet publish managed/Mome.Cli -c Release -r linux-x64 --self-contained -o build/gpu-cli
tar -cJf build/gpu-cli.tar.xz -C build gpu-cli
rm -rf build/gpu-cli
ls -l build/gpu-cli.tar.xz
