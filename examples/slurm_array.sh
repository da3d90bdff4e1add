#!/bin/bash
# Run examples/cluster_shards.py as a SLURM job array: each task records its
# slice of the grid into its own store (shards/<task>), then a dependent job
# merges the shards. Submit with:  sbatch examples/slurm_array.sh
#
#SBATCH --job-name=diffusion
#SBATCH --array=0-15
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --output=logs/%x-%A_%a.out

set -euo pipefail
STORE=${STORE:-$PWD/runs}          # the merged store; shards go to $STORE.shards/<task>
TASKS=${SLURM_ARRAY_TASK_COUNT:-16}

if [[ -n "${SLURM_ARRAY_TASK_ID:-}" && "${MERGE:-0}" != 1 ]]; then
    python examples/cluster_shards.py "$STORE" --task "$SLURM_ARRAY_TASK_ID" --tasks "$TASKS"
    # The last step: once every task has finished, merge (submitted once, by task 0).
    if [[ "$SLURM_ARRAY_TASK_ID" == 0 ]]; then
        sbatch --dependency=afterok:"$SLURM_ARRAY_JOB_ID" --export=ALL,MERGE=1 --array=0 \
            --job-name=diffusion-merge "$0"
    fi
else
    # Idempotent: rerun it after fixing a failed task, and only new runs are added.
    # (--allow-code-mismatch because the example records without git; drop it when yours uses git.)
    recorder merge "$STORE".shards/* --into "$STORE" --allow-code-mismatch
fi
