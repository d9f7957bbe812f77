// Runs a Flamenco 3 job compiler script outside the Manager, with the globals the Manager gives it
// (author, path, print, alert, frameChunker, frameCount, formatTimestampLocal, shellSplit), and prints the
// job type and the compiled tasks as JSON. Usage: node flamenco_harness.js SCRIPT.js '{"settings": {...}}'
"use strict";
const fs = require("fs");
const vm = require("vm");
const nodePath = require("path");

const SETTING_TYPES = new Set(["string", "int32", "float", "bool"]);
const SUBTYPES = new Set(["file_path", "dir_path", "hashed_file_path"]);
const VISIBILITY = new Set(["hidden", "submission", "web", "none"]);

function fail(msg) {
    process.stderr.write(`harness: ${msg}\n`);
    process.exit(1);
}

const author = {
    Task(name, type) {
        name = `${name}`.trim();
        type = `${type}`.trim();
        if (!name) throw new Error("author.Task(name, type): name is required");
        if (!type) throw new Error("author.Task(name, type): type is required");
        return {
            name, type, priority: 50, commands: [], dependencies: [],
            addCommand(cmd) {
                if (!cmd || typeof cmd.name !== "string") throw new Error("addCommand: not an author.Command");
                this.commands.push(cmd);
            },
            addDependency(task) {
                if (!task || !Array.isArray(task.commands)) throw new Error("addDependency: not an author.Task");
                this.dependencies.push(task);
            },
        };
    },
    Command(name, parameters, totalStepCount) {
        return { name, parameters, totalStepCount: totalStepCount || 0 };
    },
};

// Flamenco's crosspath module: forward-slash paths.
const path = {
    basename: (p) => nodePath.posix.basename(p.replace(/\\/g, "/")),
    dirname: (p) => nodePath.posix.dirname(p.replace(/\\/g, "/")),
    join: (...parts) => nodePath.posix.join(...parts.map((p) => p.replace(/\\/g, "/"))),
    stem: (p) => { const b = nodePath.posix.basename(p); return b.slice(0, b.length - nodePath.posix.extname(b).length); },
};

function explode(range) {
    const frames = new Set();
    for (const part of range.replaceAll("..", "-").split(",")) {
        const ends = part.split("-").map((s) => parseInt(s.trim(), 10));
        if (ends.some(isNaN) || ends.length > 2) throw new Error(`invalid range "${range}"`);
        for (let f = ends[0]; f <= ends[ends.length - 1]; f++) frames.add(f);
    }
    return [...frames].sort((a, b) => a - b);
}

function merge(frames) {
    const out = [];
    let start = frames[0], prev = frames[0];
    const push = (a, b) => { if (a === b) out.push(`${a}`); else if (a + 1 === b) out.push(`${a}`, `${b}`); else out.push(`${a}-${b}`); };
    for (const f of frames.slice(1)) {
        if (f > prev + 1) { push(start, prev); start = f; }
        prev = f;
    }
    push(start, prev);
    return out.join(",");
}

const logs = [];
const context = vm.createContext({
    author, path, process: { platform: "linux" },
    print: (...a) => logs.push(a.map(String).join(" ")),
    alert: (...a) => logs.push("ALERT " + a.map(String).join(" ")),
    frameChunker(range, size) {
        if (size < 1) throw new Error(`invalid chunk size, must be positive number: ${size}`);
        const frames = explode(range), chunks = [];
        for (let i = 0; i < frames.length; i += size) chunks.push(merge(frames.slice(i, i + size)));
        return chunks;
    },
    frameCount: (range) => explode(range).length,
    formatTimestampLocal(d) {
        const z = (n) => `${n}`.padStart(2, "0");
        return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}_${z(d.getHours())}${z(d.getMinutes())}${z(d.getSeconds())}`;
    },
    shellSplit: (s) => s.split(/\s+/).filter(Boolean),
});

const [script, input] = process.argv.slice(2);
const submitted = JSON.parse(input || "{}");
const source = fs.readFileSync(script, "utf8");
const exported = vm.runInContext(source + "\n;({JOB_TYPE: typeof JOB_TYPE === 'undefined' ? undefined : JOB_TYPE, " +
    "compileJob: typeof compileJob === 'undefined' ? undefined : compileJob})", context, { filename: script });
const jobType = exported.JOB_TYPE;
if (!jobType || typeof jobType.label !== "string" || !Array.isArray(jobType.settings)) fail("no proper JOB_TYPE object");
if (typeof exported.compileJob !== "function") fail("does not define a compileJob(job) function");
for (const s of jobType.settings) {
    if (typeof s.key !== "string" || !SETTING_TYPES.has(s.type)) fail(`setting ${JSON.stringify(s)}: bad key or type`);
    if (s.subtype !== undefined && !SUBTYPES.has(s.subtype)) fail(`setting ${s.key}: bad subtype ${s.subtype}`);
    if (s.visible !== undefined && !VISIBILITY.has(s.visible)) fail(`setting ${s.key}: bad visible ${s.visible}`);
    if (s.choices !== undefined && (s.type !== "string" || !s.choices.every((c) => typeof c === "string"))) {
        fail(`setting ${s.key}: choices need a string setting`);
    }
}

// The Manager fills in defaults for settings the submission leaves out.
const settings = {};
for (const s of jobType.settings) if (s.default !== undefined) settings[s.key] = s.default;
Object.assign(settings, submitted.settings || {});
const tasks = [];
const job = {
    name: submitted.name || "job", settings, metadata: {}, created: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    addTask(task) { tasks.push(task); },
};
try {
    exported.compileJob(job);
} catch (err) {
    fail(`compileJob failed: ${err && err.message ? err.message : err}`);
}
process.stdout.write(JSON.stringify({
    jobType,
    settings: job.settings,
    logs,
    tasks: tasks.map((t) => ({
        name: t.name, type: t.type,
        commands: t.commands.map((c) => ({ name: c.name, parameters: c.parameters })),
        dependencies: t.dependencies.map((d) => d.name),
    })),
}, null, 1) + "\n");
