"use client";

import { ProgressBar } from "@/components/ui";
import { formatDuration } from "@/lib/format";
import type { StepState, TimelineStep } from "@/lib/timeline";

const LABEL: Record<string, string> = {
  validate: "Validate",
  extract: "Extract text",
  analyze: "Analyze",
  categorize: "Categorize",
  review: "Review",
  export: "Export",
};

const STATE_TEXT: Record<StepState, string> = {
  pending: "Pending",
  running: "Running",
  retrying: "Retrying",
  done: "Done",
  failed: "Failed",
  waiting: "Waiting",
  skipped: "Not reached",
};

const DOT: Record<StepState, string> = {
  pending: "bg-white ring-2 ring-slate-400",
  running: "bg-blue-600 ring-4 ring-blue-200 animate-pulse",
  retrying: "bg-amber-500 ring-4 ring-amber-200 animate-pulse",
  done: "bg-emerald-600",
  failed: "bg-red-600",
  waiting: "bg-amber-500",
  skipped: "bg-slate-300",
};

export function Timeline({ steps }: { steps: TimelineStep[] }) {
  return (
    <ol className="space-y-0" aria-label="Stages">
      {steps.map((step, index) => (
        <li
          key={step.step}
          data-testid={`step-${step.step}`}
          data-step={step.step}
          data-state={step.state}
          className="relative flex gap-3 pb-4"
        >
          {index < steps.length - 1 ? (
            <span aria-hidden="true" className="absolute left-[7px] top-5 h-full w-0.5 bg-slate-200" />
          ) : null}
          <span aria-hidden="true" className={`relative mt-1 h-4 w-4 flex-none rounded-full ${DOT[step.state]}`} />
          <div className="min-w-0 flex-1">
            <p className="flex flex-wrap items-baseline gap-x-2">
              <span className="font-semibold">{LABEL[step.step]}</span>
              <span
                className={`text-sm ${step.state === "failed" ? "font-semibold text-red-800" : step.state === "retrying" ? "font-semibold text-amber-900" : "text-slate-700"}`}
              >
                {STATE_TEXT[step.state]}
                {step.state === "done" && step.durationMs !== null ? ` in ${formatDuration(step.durationMs)}` : ""}
              </span>
            </p>
            {step.detail ? (
              <p className={`text-sm ${step.state === "failed" ? "text-red-800" : "text-slate-700"}`} data-testid={`step-${step.step}-detail`}>
                {step.detail}
              </p>
            ) : null}
            {step.state === "running" && step.progress !== null ? (
              <div className="mt-1 max-w-sm">
                <ProgressBar value={step.progress} label={`${LABEL[step.step]} progress`} />
              </div>
            ) : null}
          </div>
        </li>
      ))}
    </ol>
  );
}
