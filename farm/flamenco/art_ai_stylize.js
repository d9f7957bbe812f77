// SPDX-License-Identifier: GPL-3.0-or-later
//
// Flamenco 3 job type "Art AI Stylize": renders a shot and stylizes its frames with the Art AI extension,
// in chunks, by running `blender -b {blendfile} --command art_ai render ... --chunk I/N` on the workers.
// Install: copy this file into the `scripts/` folder next to `flamenco-manager` and restart the Manager
// (see README.md). The job type's name is the file name with "_" as "-": `art-ai-stylize`.
//
// Output: {render_output_path}/raw/0001.png (the render) and {render_output_path}/stylized/0001.png.
// Without temporal coherence every chunk is one task that renders and stylizes its frames. With it, the
// renders run first (in parallel), then every stylize chunk waits for its own frames and for the chunk before
// it (its first frame is stylized coherently with the last frame of the previous chunk, which it re-stylizes).
// Finished frames are skipped, so a re-queued task resumes where it stopped.

const JOB_TYPE = {
    label: "Art AI Stylize",
    settings: [
        // Settings for artists to determine:
        { key: "frames", type: "string", required: true,
          eval: "f'{C.scene.frame_start}-{C.scene.frame_end}'",
          evalInfo: { showLinkButton: true, description: "Scene frame range" },
          description: "Frame range to render, 'A-B' (for example '1-250')" },
        { key: "chunk_size", type: "int32", default: 10, propargs: { min: 1, max: 1000 }, visible: "submission",
          description: "Number of frames in one task" },
        { key: "style", type: "string", subtype: "file_path", required: true, visible: "submission",
          description: "Style image (PNG, JPEG, EXR); a path the workers can read" },
        { key: "method", type: "string", required: true, default: "auto", visible: "submission",
          choices: ["auto", "gatys", "fast", "adain", "color"],
          description: "Stylize method: auto picks fast/adain when their weights are installed, else gatys" },
        { key: "strength", type: "float", default: 1.0, propargs: { min: 0.0, max: 1.0 }, visible: "submission",
          description: "0 = unchanged render, 1 = full effect" },
        { key: "preserve_color", type: "bool", default: false, visible: "submission",
          description: "Keep the render's colours, take only texture and brush strokes from the style" },
        { key: "temporal", type: "bool", default: true, visible: "submission",
          description: "Reduce flicker between frames (stylize chunks then wait for the chunk before them)" },
        { key: "steps", type: "int32", default: 0, propargs: { min: 0, max: 10000 }, visible: "submission",
          description: "Optimisation steps for gatys (0 = the method's default)" },
        { key: "model", type: "string", default: "", visible: "submission",
          description: "Fast-style checkpoint: a path or a name in the model store (optional)" },
        { key: "device", type: "string", default: "auto", choices: ["auto", "cuda", "mps", "cpu"],
          visible: "submission", description: "Where the networks run on the worker" },

        // render_output_root + add_path_components determine the value of render_output_path.
        { key: "render_output_root", type: "string", subtype: "dir_path", required: true, visible: "submission",
          description: "Base folder of the output; job-specific parts are appended to it" },
        { key: "add_path_components", type: "int32", required: true, default: 0, propargs: { min: 0, max: 32 },
          visible: "submission",
          description: "Number of path components of the current blend file to use in the output path" },
        { key: "render_output_path", type: "string", subtype: "dir_path", editable: false,
          eval: "str(Path(abspath(settings.render_output_root), last_n_dir_parts(settings.add_path_components), jobname, '{timestamp}'))",
          description: "Folder that receives raw/ and stylized/" },

        // Automatically evaluated settings:
        { key: "blendfile", type: "string", required: true, description: "Path of the Blend file to render",
          visible: "web" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const range = parseRange(settings.frames);
    const frameTotal = range.end - range.start + 1;
    const chunkSize = Math.max(1, Math.floor(Number(settings.chunk_size) || 1));
    const numChunks = Math.ceil(frameTotal / chunkSize);

    const outputDir = outputPath(job);
    settings.render_output_path = outputDir; // show the folder actually used when the job is inspected later

    const base = ["--command", "art_ai", "render", settings.blendfile, "-o", outputDir,
                  "--frames", `${range.start}-${range.end}`];
    const styleArgs = ["--style", settings.style, "--method", settings.method || "auto",
                       "--strength", `${settings.strength === undefined ? 1.0 : settings.strength}`];
    if (settings.preserve_color) styleArgs.push("--preserve-color");
    if (settings.steps > 0) styleArgs.push("--steps", `${settings.steps}`);
    if (settings.model) styleArgs.push("--model", settings.model);
    if (settings.device && settings.device !== "auto") styleArgs.push("--device", settings.device);

    const renderTasks = [];
    for (let i = 1; i <= numChunks; i++) {
        const chunk = ["--chunk", `${i}/${numChunks}`];
        const frames = chunkFrames(range, i, numChunks);
        // Temporal: render only (raw frames), stylize afterwards in tasks that can see the previous chunk's frames.
        const args = settings.temporal ? base.concat(chunk) : base.concat(chunk, styleArgs);
        const name = `${settings.temporal ? "render" : "render-stylize"}-${frames}`;
        const task = author.Task(name, "blender");
        task.addCommand(blenderCommand(settings, args));
        renderTasks.push(task);
        job.addTask(task);
    }
    if (!settings.temporal) {
        return;
    }
    for (let i = 1; i <= numChunks; i++) {
        const task = author.Task(`stylize-${chunkFrames(range, i, numChunks)}`, "blender");
        task.addCommand(blenderCommand(settings,
            base.concat(["--chunk", `${i}/${numChunks}`], styleArgs, ["--temporal"])));
        task.addDependency(renderTasks[i - 1]);
        if (i > 1) {
            task.addDependency(renderTasks[i - 2]); // the frame before this chunk must be rendered
        }
        job.addTask(task);
    }
}

function blenderCommand(settings, args) {
    return author.Command("blender-render", {
        exe: "{blender}",
        exeArgs: "{blenderArgs}",
        argsBefore: [],
        blendfile: settings.blendfile,
        args: args,
    });
}

// "A-B", "A..B" or "A" -> {start, end}. Art AI's `render --chunk` splits one contiguous range.
function parseRange(text) {
    const t = `${text}`.trim().replace("..", "-");
    const m = /^(-?\d+)\s*(?:-\s*(-?\d+))?$/.exec(t);
    if (!m) {
        throw `Art AI Stylize: frames must be one range like "1-250", not "${text}"`;
    }
    const start = parseInt(m[1], 10);
    const end = m[2] === undefined ? start : parseInt(m[2], 10);
    if (end < start) {
        throw `Art AI Stylize: frames "${text}": the end comes before the start`;
    }
    return { start: start, end: end };
}

// The frames of chunk i of n, the same slices as Art AI's `--chunk I/N` (for task names only).
function chunkFrames(range, i, n) {
    const total = range.end - range.start + 1;
    const a = range.start + Math.floor((i - 1) * total / n);
    const b = range.start + Math.floor(i * total / n) - 1;
    return a === b ? `${a}` : `${a}-${b}`;
}

function outputPath(job) {
    const p = job.settings.render_output_path;
    if (!p) {
        throw "Art AI Stylize: no render_output_path setting";
    }
    return p.replace(/{([^}]+)}/g, (match, group0) => {
        switch (group0) {
        case "timestamp":
            return formatTimestampLocal(job.created);
        default:
            return match;
        }
    });
}
