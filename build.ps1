#!/usr/bin/env pwsh
<#
.SYNOPSIS
  Mome's build tasks. Run with PowerShell 7 from the repo's tool manifest:
    dotnet tool restore
    dotnet pwsh build.ps1 <task> [-Configuration Release|Debug]
.DESCRIPTION
  build           build the native core (CMake, through MSBuild) and every .NET project
  test            build and run the whole suite (NUnit + the native CTest suite)
  bench           run the BenchmarkDotNet suites in bench/ (when present)
  regen-bindings  regenerate bindings/generated/*.g.cs from native/include/mome.h
  check-bindings  fail when the committed bindings are stale
  gpu-check       run bench/gpu/run.sh (on a machine with an NVIDIA GPU and nvcc)
  ci              what CI runs: .ci/run
#>
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'bench', 'regen-bindings', 'check-bindings', 'gpu-check', 'ci')]
    [string] $Task = 'build',
    [ValidateSet('Release', 'Debug')]
    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Checked([string] $Command, [string[]] $Arguments) {
    Write-Host "> $Command $($Arguments -join ' ')" -ForegroundColor Cyan
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Command exited with $LASTEXITCODE" }
}

$generator = 'bindings/Mome.Bindings.Generator'
switch ($Task) {
    'build' { Invoke-Checked dotnet @('build', 'Mome.sln', '-c', $Configuration) }
    'test' { Invoke-Checked dotnet @('test', 'Mome.sln', '-c', $Configuration) }
    'bench' {
        $suites = Get-ChildItem bench -Filter *.csproj -Recurse -ErrorAction SilentlyContinue
        if (-not $suites) { Write-Host 'bench/ has no BenchmarkDotNet suite yet'; break }
        foreach ($suite in $suites) { Invoke-Checked dotnet @('run', '--project', $suite.FullName, '-c', 'Release', '--', '--filter', '*') }
    }
    'regen-bindings' { Invoke-Checked dotnet @('run', '--project', $generator, '-c', $Configuration, '--', 'native/include/mome.h', 'bindings/generated') }
    'check-bindings' { Invoke-Checked dotnet @('run', '--project', $generator, '-c', $Configuration, '--', 'native/include/mome.h', 'bindings/generated', '--check') }
    'gpu-check' {
        if (-not (Test-Path bench/gpu/run.sh)) { throw 'bench/gpu/run.sh does not exist yet (the CUDA memory-layer issue adds it)' }
        Invoke-Checked bash @('bench/gpu/run.sh')
    }
    'ci' { Invoke-Checked bash @('.ci/run') }
}
